"""Constant-frame-rate resampling of VFR input, and rotation metadata."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
from video_testutil import smooth_frame, solid_frame, write_pts_video

from a2v.video import probe, read_frames, read_video

PTS_MS = [0, 30, 50, 120, 130, 200, 290, 300, 310, 400, 470]  # irregular: VFR


def _slot(t_s: float, fps: float) -> int:
    return math.floor(t_s * fps + 0.5)  # round half up, as FFmpeg's fps filter


@pytest.mark.parametrize("fps", [25.0, 10.0, 60.0])
def test_vfr_to_cfr_count_and_frames(tmp_path, fps):
    path = tmp_path / "vfr.mp4"
    write_pts_video(path, [solid_frame(20 * i) for i in range(len(PTS_MS))], PTS_MS, 40)
    duration = probe(path).duration_s
    out = list(read_frames(path, fps=fps))
    assert len(out) == round(duration * fps)
    # closed form: output k shows the last source frame whose slot is <= k
    slots = [_slot(t / 1000, fps) for t in PTS_MS]
    expected = [max(i for i, n in enumerate(slots) if n <= k) for k in range(len(out))]
    got = [int(round(f.mean() / 20)) for f in out]
    assert got == expected


def test_native_read_keeps_every_vfr_frame(tmp_path):
    path = tmp_path / "vfr.mp4"
    write_pts_video(path, [solid_frame(20 * i) for i in range(len(PTS_MS))], PTS_MS, 40)
    got = [int(round(f.mean() / 20)) for f in read_frames(path)]
    assert got == list(range(len(PTS_MS)))


def test_cfr_halves_a_50fps_clip(tmp_path):
    path = tmp_path / "50.mp4"
    write_pts_video(path, [solid_frame(10 * i) for i in range(20)], [20 * i for i in range(20)], 20)
    frames, fps = read_video(path, fps=25)
    assert fps == 25.0 and len(frames) == 10
    assert [int(round(f.mean() / 10)) for f in frames] == list(range(0, 20, 2))


def _marked() -> np.ndarray:
    """uint8 (32,64,3): black with a white block in the top-left corner (shows orientation)."""
    img = np.zeros((32, 64, 3), np.uint8)
    img[:8, :16] = 255
    return img


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_display_matrix_rotation_is_applied(tmp_path, deg):
    path = tmp_path / f"rot{deg}.mp4"
    write_pts_video(path, [_marked()] * 3, [0, 40, 80], 40, rotation=deg)
    info = probe(path)
    assert info.rotation_deg == deg
    frame = next(read_frames(path))
    want = np.rot90(_marked(), deg // 90)  # display rotation is counter-clockwise
    assert frame.shape == want.shape and (info.height, info.width) == want.shape[:2]
    assert np.abs(frame.astype(int) - want).mean() < 8
    small = next(read_frames(path, size=(want.shape[0] // 2, want.shape[1] // 2)))
    assert small.shape == (want.shape[0] // 2, want.shape[1] // 2, 3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_rotate_tag_matches_ffmpeg_autorotate(tmp_path):
    plain = tmp_path / "plain.mp4"
    write_pts_video(plain, [_marked(), smooth_frame(1, 32, 64)], [0, 40], 40)
    tagged = tmp_path / "tagged.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(plain),
            "-c",
            "copy",
            "-metadata:s:v",
            "rotate=90",
            str(tagged),
        ],
        check=True,
    )
    info = probe(tagged)
    assert info.rotation_deg in (90, 270)  # the sign convention of the tag is FFmpeg's business
    ours = next(read_frames(tagged))
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(tagged),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(ours.shape)  # ffmpeg's own autorotate
    assert ours.shape == (64, 32, 3)
    assert np.abs(ours.astype(int) - ref).max() <= 2
