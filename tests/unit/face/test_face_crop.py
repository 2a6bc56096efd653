"""Square crops, their explicit affine matrices and feathered paste-back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from a2v.errors import InputError
from a2v.face.crop import CropTransform, crop_track, square_box


def smooth_image(h: int = 120, w: int = 160) -> np.ndarray:
    """A smooth RGB uint8 (H,W,3) gradient image (resampling it is nearly lossless)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200 + 20, y / h * 200 + 20, 128 + 60 * np.sin(x / 17 + y / 23)], -1)
    return img.astype(np.uint8)


def test_square_box_centre_and_margin():
    sq = square_box(np.array([10, 20, 50, 100]), margin_frac=0.25)
    np.testing.assert_allclose(sq, [-30, 0, 90, 120])  # centre (30,60), side 80 * 1.5 = 120


def test_matrix_maps_square_corners_to_crop_corners():
    t = CropTransform.from_box(np.array([10, 20, 50, 100]), (120, 160), size_px=64, margin_frac=0.25)
    corners = np.array([[-30.0, 0.0], [90.0, 120.0]])
    np.testing.assert_allclose(t.points_to_crop(corners), [[0, 0], [64, 64]], atol=1e-9)
    pts = np.random.default_rng(0).uniform(0, 100, (5, 7, 2))
    np.testing.assert_allclose(t.points_to_frame(t.points_to_crop(pts)), pts, atol=1e-9)


def test_apply_is_an_exact_crop_at_unit_scale_and_integer_offset():
    img = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    t = CropTransform.from_box(np.array([40, 30, 80, 70]), img.shape[:2], size_px=40, margin_frac=0.0)
    np.testing.assert_array_equal(t.apply(img), img[30:70, 40:80])
    back = t.paste_back(np.zeros_like(img), t.apply(img), feather_px=0)
    np.testing.assert_array_equal(back[30:70, 40:80], img[30:70, 40:80])
    assert back[:30].max() == 0 and back[:, :40].max() == 0 and back[70:].max() == 0


def test_apply_matches_cv2_resize_of_the_crop():
    img = smooth_image()
    t = CropTransform.from_box(np.array([40, 30, 80, 70]), img.shape[:2], size_px=80, margin_frac=0.0)
    ref = cv2.resize(img[30:70, 40:80], (80, 80), interpolation=cv2.INTER_LINEAR)
    assert np.abs(t.apply(img).astype(int) - ref).max() <= 2


def test_paste_back_of_apply_reproduces_the_face_region():
    img = smooth_image()
    t = CropTransform.from_box(np.array([50, 35, 95, 85]), img.shape[:2], size_px=256)
    back = t.paste_back(img, t.apply(img), feather_px=12)
    assert back.dtype == np.uint8 and back.shape == img.shape
    assert np.abs(back.astype(int) - img).max() <= 3


def test_paste_back_feathers_and_leaves_outside_untouched():
    img = np.full((120, 160, 3), 100, np.uint8)
    t = CropTransform.from_box(np.array([40, 30, 80, 70]), img.shape[:2], size_px=80, margin_frac=0.0)
    face = np.full((80, 80, 3), 200, np.uint8)
    out = t.paste_back(img, face, feather_px=16)  # 16 crop px = 8 frame px
    assert (out[50, 60] == 200).all()  # centre: the face
    assert (out[:29] == 100).all() and (out[:, :39] == 100).all()  # outside: the frame
    row = out[50, 40:60, 0].astype(int)
    assert np.all(np.diff(row) >= 0) and 100 < row[2] < 200  # a ramp from frame to face


def test_crop_outside_the_frame_and_errors():
    img = smooth_image()
    t = CropTransform.from_box(np.array([-20, -10, 30, 40]), img.shape[:2], size_px=32)
    assert t.apply(img).shape == (32, 32, 3)
    with pytest.raises(InputError, match="NaN"):
        CropTransform.from_box(np.full(4, np.nan), img.shape[:2])
    with pytest.raises(InputError, match="frames"):
        t.apply(img[:100])
    with pytest.raises(InputError, match="face crop"):
        t.paste_back(img, np.zeros((16, 16, 3), np.uint8))


def test_crop_track_skips_frames_without_face():
    frames = np.stack([smooth_image()] * 3)  # (3,120,160,3)
    boxes = np.array([[40, 30, 80, 70], [np.nan] * 4, [42, 30, 82, 70]], np.float32)
    crops, ts = crop_track(frames, boxes, size_px=48)
    assert crops.shape == (3, 48, 48, 3) and ts[1] is None and crops[1].max() == 0
    assert ts[0] is not None and ts[2] is not None
