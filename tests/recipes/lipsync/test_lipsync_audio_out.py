"""The output keeps the input speech's sample rate and channels (48 kHz stereo in -> 48 kHz stereo out),
on the no-training path and on a fitted pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.video import probe


def stereo_48k_speech(path, seconds: float = 1.6):
    """eSpeak NG speech resampled to 48 kHz, left = speech, right = speech at half level: writes a wav."""
    import soundfile as sf

    from a2v.audio import resample, synthesize_speech

    wav = resample(synthesize_speech("Bob will pay me back soon.", sr=16000), 16000, 48000)  # (S,)
    wav = np.resize(wav, int(seconds * 48000))
    sf.write(str(path), np.stack([wav, 0.5 * wav], 1), 48000, subtype="PCM_16")  # (S,2)
    return path


@pytest.fixture
def photo(tmp_path):
    pytest.importorskip("skimage")
    from skimage import data
    from skimage.transform import resize

    from a2v.video import write_png

    return write_png(tmp_path / "face.png", (resize(data.astronaut(), (256, 256)) * 255).astype(np.uint8))


def test_driven_generate_keeps_48k_stereo(tmp_path, photo):
    pytest.importorskip("facenet_pytorch")
    from a2v.recipes.lipsync.driven.generate import generate_driven

    out = tmp_path / "out.mp4"
    report = generate_driven(photo, stereo_48k_speech(tmp_path / "s.wav"), out, mode="envelope", progress=False)
    info = probe(out)
    assert info.audio_sr == 48000 and info.audio_channels == 2
    assert report["audio_sr"] == 48000 and report["audio_channels"] == 2


def test_fitted_pipeline_keeps_48k_stereo(tmp_path):
    from test_lipsync_pipeline import TEMPLATE_CFG, make_talking_video, tiny_pipeline

    from a2v.recipes.lipsync.template import prepare_template

    pytest.importorskip("skimage")
    clip = tmp_path / "astronaut.mp4"
    wav16 = make_talking_video(clip, seconds=1.0)
    pipe = tiny_pipeline(prepare_template(clip, TEMPLATE_CFG), wav16)
    out = tmp_path / "fitted.mp4"
    pipe.generate(stereo_48k_speech(tmp_path / "s.wav", seconds=1.0), out, progress=False)  # file: own rate kept
    info = probe(out)
    assert info.audio_sr == 48000 and info.audio_channels == 2 and info.num_frames == 25
