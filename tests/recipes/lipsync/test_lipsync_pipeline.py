"""Lip-sync pipeline: stage 1 + template + renderer -> mp4 (ping-pong, pass-through, paste-back), persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from a2v.errors import InputError, MissingWeightsError
from a2v.recipes.lipsync.template import (
    FrameStore,
    Template,
    TemplateConfig,
    face_inputs,
    open_frames,
    pingpong_indices,
    prepare_template,
)

REPO = Path(__file__).resolve().parents[3]
TEMPLATE_CFG = TemplateConfig(min_face_px=80, detect_every_frames=5)


def make_talking_video(path: Path, seconds: float = 2.0, size: int = 256) -> np.ndarray:
    """A 25 fps clip of scikit-image's astronaut (face ~100 px) sliding a few px per frame, with
    eSpeak NG speech muxed; returns the speech float32 (S,) 16 kHz."""
    import cv2
    from skimage import data

    from a2v.audio import synthesize_speech
    from a2v.video import VideoWriter

    img = cv2.resize(data.astronaut()[10:250, 130:370], (size + 16, size + 16), interpolation=cv2.INTER_AREA)
    speech = synthesize_speech("hello there, this is a short test of the lip sync", sr=16000)
    wav = np.resize(speech, int(seconds * 16000)).astype(np.float32)  # (S,) repeated/trimmed
    with VideoWriter(path, 25, audio=wav, audio_sr=16000, preset="ultrafast") as w:
        for i in range(int(round(seconds * 25))):
            dx = int(round(4 + 3 * np.sin(i / 5)))
            w.write(np.ascontiguousarray(img[4 : 4 + size, dx : dx + size]))
    return wav


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    pytest.importorskip("skimage")
    path = tmp_path_factory.mktemp("video") / "astronaut.mp4"
    return path, make_talking_video(path)


@pytest.fixture(scope="module")
def template(video) -> Template:
    return prepare_template(video[0], TEMPLATE_CFG)


def tiny_pipeline(template: Template, wav: np.ndarray):
    """Untrained tiny stage 1 (built from mouth_model directly) + untrained 64 px renderer + the template."""
    from lipsync_testutil import synthetic_item

    from a2v.audio import mfcc
    from a2v.config import load_config
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.data import LipSyncItem, MouthFeatures
    from a2v.recipes.lipsync.mouth_model import build_generator
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.recipes.lipsync.renderer import Renderer, RendererConfig

    torch.manual_seed(0)
    cfg = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "tiny.yaml")
    person = LipSyncItem("astronaut", "astronaut", mfcc(wav, 16000), template.landmarks)
    items = [synthetic_item("a", seed=1), synthetic_item("b", seed=2), person]
    features = MouthFeatures(cfg.data).fit(items)
    rcfg = RendererConfig(resolution_px=64, ngf=8, n_downsample_global=2, n_blocks_global=1, lambda_vgg=0.0)
    template.speaker = "astronaut"
    return LipSyncPipeline(build_generator(cfg.model), cfg, features, None, Renderer(rcfg, for_training=False),
                           template)


def test_pingpong_indices() -> None:
    np.testing.assert_array_equal(pingpong_indices(9, 4), [0, 1, 2, 3, 2, 1, 0, 1, 2])
    np.testing.assert_array_equal(pingpong_indices(3, 1), [0, 0, 0])
    np.testing.assert_array_equal(pingpong_indices(2, 5), [0, 1])
    with pytest.raises(InputError):
        pingpong_indices(3, 0)


def test_frame_store_spills_to_disk() -> None:
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(5)]
    with FrameStore(iter(frames), max_memory_mb=2 * 192 / 2**20) as store:  # room for 2 frames
        assert store.on_disk and len(store) == 5
        for i in (4, 0, 3):
            np.testing.assert_array_equal(store[i], frames[i])
    assert not FrameStore(iter(frames)).on_disk
    with pytest.raises(InputError):
        FrameStore(iter([]))


def test_template_track(template: Template, video) -> None:
    assert len(template) == 50 and template.has_face.all()
    with open_frames(template) as frames:
        assert len(frames) == 50 and frames[0].shape == (256, 256, 3)
        t, crop, fmap = face_inputs(frames[0], template.boxes[0], template.landmarks[0], template.cfg, 64)
    assert crop.shape == (64, 64, 3) and fmap.shape == (64, 64, 3)
    assert fmap[..., 0].max() == 255  # landmark lines are drawn inside the crop
    lm_crop = t.points_to_crop(template.landmarks[0])
    assert (lm_crop > 0).all() and (lm_crop < 64).all()


def test_save_load_round_trip(template: Template, video, tmp_path) -> None:
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    pipe = tiny_pipeline(template, video[1])
    pipe.save_pretrained(tmp_path / "m")
    back = LipSyncPipeline.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(back.predict_mouth(video[1]), pipe.predict_mouth(video[1]), atol=1e-6)
    assert back.template.speaker == "astronaut" and Path(back.template.source).is_file()
    np.testing.assert_array_equal(back.template.boxes, template.boxes)
    assert back.renderer.cfg == pipe.renderer.cfg
    x = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    torch.testing.assert_close(back.renderer.render(x), pipe.renderer.render(x))


def test_predict_landmarks_replaces_mouth_only(template: Template, video) -> None:
    pipe = tiny_pipeline(template, video[1])
    wav = video[1][:16000]  # 1 s -> 25 frames
    lm = pipe.predict_landmarks(wav, template.landmarks[:10])
    assert lm.shape == (25, 68, 2)
    ref = template.landmarks[:10][pingpong_indices(25, 10)]
    np.testing.assert_allclose(lm[:, :48], ref[:, :48], atol=1e-4)  # jaw unchanged: no jaw model here
    assert np.abs(lm[:, 48:] - ref[:, 48:]).max() > 0.01


def _read(path: Path) -> np.ndarray:
    from a2v.video import read_video

    return read_video(path)[0]


def test_generate_longer_audio_ping_pongs(template: Template, video, tmp_path) -> None:
    from a2v.video import probe

    pipe = tiny_pipeline(template, video[1])
    wav = np.concatenate([video[1], video[1][:16000]])  # 3 s of speech, template 2 s
    out = tmp_path / "out.mp4"
    report = pipe.generate(wav, out, progress=False)
    info = probe(out)
    assert info.fps == 25 and info.num_frames == 75 and info.has_audio
    assert abs(info.duration_s - 3.0) < 0.1
    assert report["frames"] == 75 and report["template_passes"] == 2 and report["frames_without_face"] == 0
    got = _read(out)
    with open_frames(template) as frames:
        idx = pingpong_indices(75, 50)
        for i in (0, 60):  # frame 60 plays template frame 38 (backward pass)
            ref = frames[idx[i]].astype(np.float32)
            diff = np.abs(got[i].astype(np.float32) - ref).mean(-1)
            t, _, _ = face_inputs(frames[idx[i]], template.boxes[idx[i]], template.landmarks[idx[i]], template.cfg, 64)
            inside = np.zeros(diff.shape, bool)
            x0, y0 = np.floor(t.points_to_frame(np.array([8.0, 8.0]))).astype(int)  # inside the feather ramp
            x1, y1 = np.ceil(t.points_to_frame(np.array([56.0, 56.0]))).astype(int)
            inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
            outside = np.ones(diff.shape, bool)
            a0, b0 = np.floor(t.points_to_frame(np.array([-1.0, -1.0]))).astype(int)
            a1, b1 = np.ceil(t.points_to_frame(np.array([65.0, 65.0]))).astype(int)
            outside[max(b0, 0) : b1, max(a0, 0) : a1] = False
            assert diff[inside].mean() > 10  # the untrained renderer's face replaced the crop
            assert diff[outside].mean() < 3  # the rest of the frame is the template (H.264 noise)


def test_frames_without_face_pass_through(template: Template, video, tmp_path) -> None:
    pipe = tiny_pipeline(template, video[1])
    t = Template(template.source, template.fps, template.frame_hw, template.boxes.copy(),
                 template.landmarks.copy(), "astronaut", template.cfg)
    t.boxes[:5] = np.nan
    t.landmarks[:5] = np.nan
    pipe.template = t
    out = tmp_path / "pass.mp4"
    report = pipe.generate(video[1][:16000], out, progress=False)  # 25 frames
    assert report["frames_without_face"] == 5
    got = _read(out)
    with open_frames(t) as frames:
        assert np.abs(got[2].astype(np.float32) - frames[2]).mean() < 3
        assert np.abs(got[10].astype(np.float32) - frames[10]).mean() > 1


def test_generate_errors(template: Template, video, tmp_path) -> None:
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    pipe = tiny_pipeline(template, video[1])
    pipe.renderer = None
    with pytest.raises(MissingWeightsError, match="lipsync fit"):
        pipe.generate(video[1], tmp_path / "x.mp4", progress=False)
    with pytest.raises(MissingWeightsError, match="pipeline.json"):
        LipSyncPipeline.from_pretrained(tmp_path)
    assert not (tmp_path / "x.mp4").exists()
