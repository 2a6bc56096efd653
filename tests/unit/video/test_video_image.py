"""PNG, PNG folders, GIF and image loading (EXIF orientation)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from video_testutil import smooth_frame

from a2v.video import load_image, write_gif, write_png, write_png_sequence


def test_png_round_trip_is_exact(tmp_path):
    frame = smooth_frame(2)
    out = write_png(tmp_path / "sub" / "f.png", frame)
    assert np.array_equal(load_image(out), frame)
    gray = frame[..., 0]
    write_png(tmp_path / "g.png", gray)
    assert np.array_equal(load_image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, -1))
    rgba = np.concatenate([frame, np.full(frame.shape[:2] + (1,), 128, np.uint8)], -1)
    write_png(tmp_path / "a.png", rgba)
    assert np.array_equal(load_image(tmp_path / "a.png"), frame)  # alpha dropped
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "bad.png", frame.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "g.png", "sub"]


@pytest.mark.parametrize("orientation, turns", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turns):
    frame = smooth_frame(0, h=20, w=30)
    exif = Image.Exif()
    exif[0x0112] = orientation  # EXIF Orientation
    path = tmp_path / "photo.png"
    Image.fromarray(frame).save(path, exif=exif)
    assert np.array_equal(load_image(path), np.rot90(frame, turns))  # 6: rotate 90 clockwise to display


def test_png_sequence(tmp_path):
    frames = [smooth_frame(i) for i in range(4)]
    folder = tmp_path / "frames"
    assert write_png_sequence(folder, iter(frames), start=1) == 4
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["000001.png", "000002.png", "000003.png", "000004.png"]
    assert np.array_equal(load_image(folder / "000003.png"), frames[2])


def test_png_sequence_error_removes_its_frames(tmp_path):
    def frames():
        yield smooth_frame(0)
        yield smooth_frame(1)
        raise RuntimeError("decoder died")

    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "keep.txt").write_text("not ours")
    with pytest.raises(RuntimeError, match="decoder died"):
        write_png_sequence(folder, frames())
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_gif(tmp_path):
    frames = [smooth_frame(i) for i in range(6)]
    path = write_gif(tmp_path / "anim.gif", iter(frames), fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size == (64, 48)
        assert im.info["duration"] == 100  # ms per frame at 10 fps
        im.seek(3)
        third = np.asarray(im.convert("RGB"))
    assert np.abs(third.astype(int) - frames[3]).mean() < 6  # 256-colour palette
    with pytest.raises(ValueError, match="the first was"):
        write_gif(tmp_path / "bad.gif", [frames[0], smooth_frame(0, h=40)], fps=10)
    assert not (tmp_path / "bad.gif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]
