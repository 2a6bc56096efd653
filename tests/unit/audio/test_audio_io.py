"""load_audio / save_audio / resample / is_silent on generated files and GRID clips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from a2v.audio import is_silent, load_audio, resample, save_audio
from a2v.errors import InputError

SR = 16000
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg program not installed")


def _tone(sr: int, seconds: float, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 2:
        return np.stack([x, 0.5 * x], axis=1).astype(np.float32)  # (S,2): right is half the left
    return x.astype(np.float32)


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def source_wav(tmp_path_factory) -> Path:
    """2 s stereo 44.1 kHz 440 Hz tone written with soundfile (float, so lossless)."""
    p = tmp_path_factory.mktemp("src") / "tone.wav"
    sf.write(p, _tone(44100, 2.0, channels=2), 44100, subtype="FLOAT")
    return p


def _expected_mono16k() -> np.ndarray:
    return resample(_tone(44100, 2.0, channels=2).mean(axis=1), 44100, SR)


def test_wav_is_read_exactly(source_wav: Path) -> None:
    out = load_audio(source_wav)
    assert out.dtype == np.float32 and out.ndim == 1
    assert out.shape == (32000,)  # ceil(88200 * 16000 / 44100)
    np.testing.assert_allclose(out, _expected_mono16k(), atol=1e-6)
    stereo = load_audio(source_wav, sr=44100, mono=False)
    assert stereo.shape == (2, 88200)
    np.testing.assert_allclose(stereo[1], 0.5 * stereo[0], atol=1e-6)


@needs_ffmpeg
@pytest.mark.parametrize("ext,codec", [("flac", "flac"), ("mp3", "libmp3lame"), ("ogg", "libvorbis"), ("m4a", "aac")])
def test_compressed_formats(tmp_path: Path, source_wav: Path, ext: str, codec: str) -> None:
    p = tmp_path / f"tone.{ext}"
    _ffmpeg("-i", str(source_wav), "-c:a", codec, str(p))
    out = load_audio(p)
    ref = _expected_mono16k()
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - ref.size) <= 160, out.size  # encoder padding trimmed to within 10 ms
    assert np.abs(out).max() <= 1.0
    if ext == "flac":
        np.testing.assert_allclose(out, ref, atol=1e-4)  # lossless (24-bit) source
        return
    # Lossy: best-aligned correlation with the reference tone and the same loudness.
    n = min(out.size, ref.size) - 400
    best = max(np.corrcoef(out[lag : lag + n], ref[:n])[0, 1] for lag in range(0, 200, 1))
    assert best > 0.99
    assert abs(np.sqrt(np.mean(out**2)) - np.sqrt(np.mean(ref**2))) < 0.02


@needs_ffmpeg
def test_audio_track_of_a_video(tmp_path: Path, source_wav: Path) -> None:
    p = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-i", str(source_wav), "-t", "2",
            "-pix_fmt", "yuv420p", "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(p))
    out = load_audio(p)
    assert abs(out.size - 32000) <= 640  # +- one 25 fps frame


def test_grid_clip(grid_clips: list[Path]) -> None:
    for clip in grid_clips[:2]:
        out = load_audio(clip)
        assert out.dtype == np.float32 and out.ndim == 1
        assert abs(out.size - 48000) <= 640, out.size  # 3 s at 16 kHz +- one 25 fps frame
        assert np.abs(out).max() <= 1.0 and not is_silent(out)


# --- bad input -------------------------------------------------------------------------------


def _assert_one_line(err: pytest.ExceptionInfo, path: Path) -> None:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.wav"
    with pytest.raises(InputError, match="not found") as e:
        load_audio(p)
    _assert_one_line(e, p)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp3"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as e:
        load_audio(p)
    _assert_one_line(e, p)


@pytest.mark.parametrize("name", ["corrupt.wav", "corrupt.mp3", "corrupt.m4a", "notes.xyz"])
def test_corrupt_or_unknown_format(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    if name.endswith(".xyz"):
        p.write_text("these are some notes, not audio\n" * 20)
    else:
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as e:
        load_audio(p)
    _assert_one_line(e, p)


def test_zero_length_audio(tmp_path: Path) -> None:
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros((0,), np.float32), SR)
    assert p.stat().st_size > 0  # a valid header, no samples
    with pytest.raises(InputError, match="no audio samples") as e:
        load_audio(p)
    _assert_one_line(e, p)


@needs_ffmpeg
def test_video_without_audio(tmp_path: Path) -> None:
    p = tmp_path / "silent_film.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "0.4", "-pix_fmt", "yuv420p", "-c:v", "mpeg4", str(p))
    with pytest.raises(InputError, match="no audio track") as e:
        load_audio(p)
    _assert_one_line(e, p)


def test_silent_audio_loads_and_is_flagged(tmp_path: Path) -> None:
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(SR, np.float32), SR)
    out = load_audio(p)
    assert out.shape == (SR,) and is_silent(out)


# --- save / resample / is_silent -------------------------------------------------------------


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_save_audio_round_trip(tmp_path: Path, ext: str) -> None:
    x = _tone(SR, 1.0)
    p = save_audio(tmp_path / "sub" / f"out.{ext}", x, SR)
    assert p.exists() and [q.name for q in p.parent.iterdir()] == [p.name]  # no temporaries left
    y = load_audio(p)
    assert abs(y.size - x.size) <= 160
    n = min(x.size, y.size)
    tol = 1e-4 if ext in {"wav", "flac"} else 0.05
    if ext in {"wav", "flac"}:
        np.testing.assert_allclose(y[:n], x[:n], atol=tol)
    else:
        assert np.corrcoef(y[:n], x[:n])[0, 1] > 0.99


def test_save_audio_clips_with_a_warning_and_rejects_bad_input(tmp_path: Path) -> None:
    x = np.array([0.0, 2.0, -3.0, 0.5], np.float32)
    with pytest.warns(UserWarning, match="clipped 2 samples"):
        save_audio(tmp_path / "loud.wav", x, SR)
    np.testing.assert_allclose(sf.read(tmp_path / "loud.wav", dtype="float32")[0], [0, 1, -1, 0.5], atol=1e-4)
    for bad in [np.zeros(0, np.float32), np.zeros((3, 10), np.float32), np.array([np.nan], np.float32)]:
        with pytest.raises(InputError):
            save_audio(tmp_path / "bad.wav", bad, SR)
    with pytest.raises(InputError, match="unsupported suffix"):
        save_audio(tmp_path / "out.xyz", np.zeros(10, np.float32), SR)
    assert not (tmp_path / "bad.wav").exists()


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (16000, 22050), (48000, 16000), (16000, 16000)])
def test_resample_preserves_a_tone(sr_in: int, sr_out: int) -> None:
    x = _tone(sr_in, 0.5, freq=1000.0)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and y.shape == (-(-x.size * sr_out // sr_in),)
    t = np.arange(y.size) / sr_out
    ref = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    mid = slice(y.size // 10, -y.size // 10)  # ignore filter edge effects
    np.testing.assert_allclose(y[mid], ref[mid], atol=5e-3)


def test_is_silent() -> None:
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert is_silent(np.full(16000, 1e-4, np.float32))  # -80 dBFS
    assert not is_silent(np.full(16000, 1e-2, np.float32))  # -40 dBFS
    blip = np.zeros(16000, np.float32)
    blip[8000:8400] = 0.01  # one loud 25 ms frame is enough
    assert not is_silent(blip)
    assert is_silent(blip, threshold_db=-30.0)
