"""Audio tracks: AAC muxed by VideoWriter and mux_audio, decoded back with PyAV."""

from __future__ import annotations

import av
import numpy as np
import pytest
import soundfile as sf
from video_testutil import smooth_frame, write_pts_video

from a2v.video import mux_audio, probe, read_audio, read_frames, write_video

SR = 16000


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    """float32 (S,): a few random-phase tones (not periodic at one frame, so alignment matters)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    freqs = rng.uniform(150, 2500, size=6)
    phases = rng.uniform(0, 2 * np.pi, size=6)
    return (0.12 * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None]).sum(0)).astype(np.float32)


def _decode_audio(path) -> tuple[np.ndarray, int, float]:
    """PyAV decode of the first audio stream: (float32 (S,) mono, Hz, stream duration s)."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        dur = float(s.duration * s.time_base) if s.duration else 0.0
        chunks = [f.to_ndarray().reshape(f.layout.nb_channels, -1).mean(0) for f in c.decode(s)]
        return np.concatenate(chunks).astype(np.float32), s.rate, dur


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_writer_audio_round_trip(tmp_path):
    fps, n = 25, 25
    wav = _signal(n / fps)
    path = tmp_path / "talk.mp4"
    write_video(path, (smooth_frame(i) for i in range(n)), fps, audio=wav, audio_sr=SR, preset="ultrafast")
    info = probe(path)
    assert info.has_audio and info.audio_sr == SR and info.audio_channels == 1
    got, sr, dur = _decode_audio(path)
    assert sr == SR
    assert abs(len(got) / SR - n / fps) < 1 / fps  # within one video frame
    assert abs(dur - n / fps) < 1 / fps
    assert _corr(got, wav) > 0.97
    mine, mine_sr = read_audio(path)
    assert mine_sr == SR and np.allclose(mine[: len(got)], got, atol=1e-4)
    assert len(list(read_frames(path))) == n


@pytest.mark.parametrize("seconds", [0.4, 2.5])  # shorter and longer than the 1 s video
def test_audio_is_padded_or_trimmed_to_video(tmp_path, seconds):
    wav = _signal(seconds, seed=1)
    path = tmp_path / "v.mp4"
    write_video(path, (smooth_frame(i) for i in range(10)), 10, audio=wav, audio_sr=SR, preset="ultrafast")
    got, _, _ = _decode_audio(path)
    assert abs(len(got) / SR - 1.0) < 0.1
    k = int(min(seconds, 1.0) * SR) - 2048
    assert _corr(got[:k], wav[:k]) > 0.97
    if seconds < 1.0:
        assert np.abs(got[int(0.5 * SR) : int(0.9 * SR)]).max() < 1e-2  # zero padding


def test_mux_audio_copies_h264_and_adds_aac(tmp_path):
    silent = tmp_path / "silent.mp4"
    write_video(silent, (smooth_frame(i) for i in range(20)), 25, preset="ultrafast")
    wav = _signal(0.8, seed=2)
    wav_file = tmp_path / "speech.wav"
    sf.write(wav_file, np.stack([wav, wav], 1), SR)  # (S,2) stereo file: mixed to mono
    for audio in (wav, wav_file):
        out = tmp_path / "talk.mp4"
        mux_audio(silent, audio, out, audio_sr=SR)
        info = probe(out)
        assert info.has_audio and info.num_frames == 20 and info.codec == "h264"
        a = list(read_frames(silent))
        b = list(read_frames(out))
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))  # packets copied, not re-encoded
        got, _, _ = _decode_audio(out)
        assert abs(len(got) / SR - 0.8) < 1 / 25
        assert _corr(got, wav) > 0.97


def test_mux_audio_reencodes_other_codecs(tmp_path):
    src = tmp_path / "mpeg4.mkv"
    write_pts_video(src, [smooth_frame(i) for i in range(10)], [40 * i for i in range(10)], 40, codec="mpeg4")
    assert probe(src).codec == "mpeg4"
    out = tmp_path / "out.mp4"
    mux_audio(src, _signal(0.4), out, audio_sr=SR)
    info = probe(out)
    assert info.codec == "h264" and info.has_audio and info.num_frames == 10
    assert info.fps == pytest.approx(25.0)


def test_mux_audio_array_needs_rate(tmp_path):
    silent = tmp_path / "silent.mp4"
    write_video(silent, [smooth_frame(0)], 25)
    with pytest.raises(ValueError, match="audio_sr"):
        mux_audio(silent, _signal(0.1), tmp_path / "o.mp4")
    with pytest.raises(ValueError, match="mono"):
        write_video(tmp_path / "o.mp4", [smooth_frame(0)], 25, audio=np.zeros((100, 2), np.float32))
    assert not (tmp_path / "o.mp4").exists()
