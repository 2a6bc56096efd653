"""Write with VideoWriter, read back with read_frames/read_video/probe."""

from __future__ import annotations

import numpy as np
import pytest
from video_testutil import smooth_frame

from a2v.errors import InputError
from a2v.video import VideoWriter, probe, read_frames, read_video, require_audio, write_video


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_write_then_read_back(tmp_path):
    src = np.stack([smooth_frame(i) for i in range(20)])  # (F,H,W,3)
    path = tmp_path / "clip.mp4"
    assert write_video(path, iter(src), fps=25) == 20
    frames, fps = read_video(path)
    assert frames.shape == (20, 48, 64, 3) and frames.dtype == np.uint8
    assert fps == 25.0
    assert _psnr(frames, src) > 35.0
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.num_frames_exact) == (64, 48, 20, True)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(20 / 25)
    assert info.codec == "h264" and info.rotation_deg == 0
    assert not info.has_audio and info.audio_sr is None
    with pytest.raises(InputError, match="has no audio track"):
        require_audio(info, path)


def test_fractional_fps_and_resize(tmp_path):
    path = tmp_path / "ntsc.mkv"
    write_video(path, (smooth_frame(i) for i in range(6)), fps=30000 / 1001, preset="ultrafast")
    assert probe(path).fps == pytest.approx(29.97, abs=1e-3)
    frames = list(read_frames(path, size=(24, 40)))
    assert len(frames) == 6 and frames[0].shape == (24, 40, 3)


def test_odd_size_is_padded_to_even(tmp_path):
    src = smooth_frame(0, h=33, w=47)
    path = tmp_path / "odd.mp4"
    write_video(path, [src, src], fps=10)
    frames, _ = read_video(path)
    assert frames.shape == (2, 34, 48, 3)  # yuv420p needs even sizes
    assert _psnr(frames[0, :33, :47], src) > 30.0
    assert np.abs(frames[0, 33, :47].astype(int) - src[32].astype(int)).mean() < 6  # edge row replicated


def test_one_frame_video_is_valid(tmp_path):
    path = tmp_path / "one.mp4"
    write_video(path, [smooth_frame(3)], fps=25)
    assert probe(path).num_frames == 1
    assert len(list(read_frames(path))) == 1
    assert len(list(read_frames(path, fps=25))) == 1
    assert len(list(read_frames(path, fps=10))) == 1


def test_read_video_guard(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, (smooth_frame(i) for i in range(8)), fps=25, preset="ultrafast")
    with pytest.raises(InputError, match="more than 5 frames"):
        read_video(path, max_frames=5)


def test_error_inside_writer_leaves_no_file(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path, fps=25) as w:
            w.write(smooth_frame(0))
            w.write(smooth_frame(1))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary


def test_bad_frames_raise_and_leave_no_file(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="uint8"):
        write_video(path, [np.zeros((16, 16, 3), np.float32)], fps=25)
    with pytest.raises(ValueError, match="the first was"):
        write_video(path, [smooth_frame(0), smooth_frame(0, h=32)], fps=25)
    with pytest.raises(InputError, match="no frames"):
        write_video(path, [], fps=25)
    with pytest.raises(ValueError, match="must end in"):
        VideoWriter(tmp_path / "out.avi", fps=25)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_does_not_change_output(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, (smooth_frame(i) for i in range(4)), fps=25, progress=True, total=4)
    with_bar = list(read_frames(path, progress=True))
    without = list(read_frames(path))
    assert len(with_bar) == 4 and all(np.array_equal(a, b) for a, b in zip(with_bar, without, strict=True))
