"""UltraSuite/TaL files: .ult/.param round trip, sync offset rules, fan and raw views."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.recipes.tongue.ultrasound import (
    FanConverter,
    UltParams,
    raw_view,
    read_param,
    read_ult,
    resample_frames,
    resize_frames,
    synchronize,
    write_ult,
)

PRM = UltParams(NumVectors=63, PixPerVector=412, ZeroOffset=51, BitsPerPixel=8, Angle=0.038, Kind=0,
                PixelsPerMm=10.0, FramesPerSec=121.5, TimeInSecsOfFirstFrame=0.27)


def test_ult_param_round_trip(tmp_path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (5, 63, 412), dtype=np.uint8)
    write_ult(tmp_path / "a.ult", frames, PRM)
    assert (tmp_path / "a.ult").stat().st_size == 5 * 63 * 412  # headerless
    prm = read_param(tmp_path / "a.param")
    assert prm == PRM
    np.testing.assert_array_equal(read_ult(tmp_path / "a.ult", prm), frames)
    # the byte layout is scanline-major: byte k of frame 0 is vector k // 412, sample k % 412
    raw = np.fromfile(tmp_path / "a.ult", np.uint8)
    assert raw[412 * 2 + 7] == frames[0, 2, 7]


def test_partial_frame_and_bad_param(tmp_path) -> None:
    frames = np.zeros((2, 63, 412), np.uint8)
    write_ult(tmp_path / "b.ult", frames, PRM)
    with open(tmp_path / "b.ult", "ab") as f:
        f.write(b"\x01" * 100)  # an interrupted recording
    assert read_ult(tmp_path / "b.ult", PRM).shape == (2, 63, 412)
    (tmp_path / "c.param").write_text("NumVectors=63\nAngle=0.03\n")
    with pytest.raises(InputError, match="missing PixPerVector, FramesPerSec"):
        read_param(tmp_path / "c.param")
    (tmp_path / "d.param").write_text("NumVectors=abc\n")
    with pytest.raises(InputError, match="NumVectors must be a number"):
        read_param(tmp_path / "d.param")
    (tmp_path / "e.ult").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="less than one"):
        read_ult(tmp_path / "e.ult", PRM)


def test_sync_positive_offset_crops_audio_then_truncates() -> None:
    sr, fps = 1000, 100.0
    wav = np.arange(3000, dtype=np.float32)  # 3 s
    frames = np.arange(250)[:, None, None] * np.ones((1, 2, 2))  # 2.5 s
    s = synchronize(wav, sr, frames, fps, 0.75)
    assert s.audio_cut_start == 750 and s.frames_cut_start == 0
    assert len(s.frames) == 225 and len(s.wav) == 2250  # 2.25 s of audio left: frames truncated
    assert s.wav[0] == 750 and s.frames_cut_end == 25 and s.audio_cut_end == 0


def test_sync_negative_offset_crops_ultrasound() -> None:
    sr, fps = 1000, 100.0
    wav = np.arange(2000, dtype=np.float32)
    frames = np.arange(300)[:, None, None] * np.ones((1, 2, 2))
    s = synchronize(wav, sr, frames, fps, -0.5)
    assert s.frames_cut_start == 50 and s.audio_cut_start == 0
    assert s.frames[0, 0, 0] == 50 and len(s.frames) == 200 and len(s.wav) == 2000
    with pytest.raises(InputError, match="do not overlap"):
        synchronize(wav[:100], sr, frames, fps, 0.5)


def test_fan_conversion_geometry() -> None:
    prm = UltParams(NumVectors=33, PixPerVector=100, ZeroOffset=50, Angle=0.02, PixelsPerMm=5.0, FramesPerSec=60)
    frames = np.zeros((1, 33, 100), np.uint8)
    frames[0, 16] = 255  # the centre scanline: a vertical line in the image centre
    frames[0, :, 99] = 200  # the deepest sample of every line: an arc at the bottom
    fan = FanConverter(prm, height_px=120)
    img = fan(frames)[0]
    assert img.shape == (120, fan.width_px) and img.dtype == np.uint8
    centre = (fan.width_px - 1) // 2
    assert img[60, centre] > 100 and img[60, :centre - 3].max() == 0  # line at theta = 0 only
    assert img[-1, centre] > 100  # the arc's apex is the bottom row
    assert img[0, 0] == 0 and img[0, -1] == 0  # outside the fan
    raw = raw_view(frames)
    assert raw.shape == (1, 100, 33) and raw[0, 5, 16] == 255


def test_resize_and_resample() -> None:
    f = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 8), np.uint8)
    assert resize_frames(f, 4).shape == (10, 4, 4)
    r = resample_frames(f, 100.0, 50.0)
    assert r.shape[0] == 5 and r[:, 0, 0].tolist() == [1, 3, 5, 7, 9]
    assert resample_frames(f, 60.0, 60.0) is f
