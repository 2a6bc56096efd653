"""Piecewise-affine warp: identity, closed-form affine inside the mesh, fixed border, folds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from a2v.errors import InputError
from a2v.face.warp import PiecewiseAffineWarp, border_points, signed_areas, triangulate


def smooth_image(h: int = 96, w: int = 128) -> np.ndarray:
    """Smooth RGB float32 (H,W,3): bilinear resampling of it is nearly exact."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([x * 1.5 + 10, y * 2.0 + 5, 100 + 40 * np.sin(x / 13 + y / 17)], -1).astype(np.float32)


def grid_points(x0: float, y0: float, x1: float, y1: float, n: int = 4) -> np.ndarray:
    """n x n jittered control points in a rectangle -> (n*n,2)."""
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    jitter = np.random.default_rng(0).uniform(-1, 1, (n * n, 2))
    return np.stack([gx.ravel(), gy.ravel()], 1) + jitter


def test_border_points_lie_on_the_border_and_cover_corners():
    b = border_points(10, 20, per_side=3)
    assert b.shape == (12, 2)
    on = (b[:, 0] == 0) | (b[:, 0] == 20) | (b[:, 1] == 0) | (b[:, 1] == 10)
    assert on.all()
    for corner in ([0, 0], [20, 0], [20, 10], [0, 10]):
        assert np.any(np.all(b == corner, axis=1))


def test_identity_when_points_do_not_move():
    img = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    pts = grid_points(20, 15, 60, 45)
    w = PiecewiseAffineWarp(pts, img.shape[:2])
    np.testing.assert_array_equal(w.warp(img, pts), img)


def test_interior_matches_global_affine_closed_form():
    """Control points moved by one affine A: inside their hull the warp equals A (cv2.warpAffine)."""
    img = smooth_image()
    pts = grid_points(30, 25, 98, 71)
    a = np.array([[1.03, 0.02, -2.5], [-0.015, 0.97, 3.0]])  # forward affine, continuous coords
    dst = pts @ a[:, :2].T + a[:, 2]
    out = PiecewiseAffineWarp(pts, img.shape[:2]).warp(img, dst)
    # reference: OpenCV warpAffine of the same forward map, expressed in pixel-index coords
    shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]]) @ np.vstack([a, [0, 0, 1]])
    ref_m = (shift @ np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]]))[:2]
    ref = cv2.warpAffine(img, ref_m, (128, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hull = cv2.convexHull(dst.astype(np.float32))
    ys, xs = np.mgrid[0:96, 0:128]
    inside = np.array(
        [
            cv2.pointPolygonTest(hull, (float(x) + 0.5, float(y) + 0.5), True) > 1.5
            for x, y in zip(xs.ravel(), ys.ravel(), strict=True)
        ]
    ).reshape(96, 128)
    assert inside.sum() > 1500
    np.testing.assert_allclose(out[inside], ref[inside], atol=0.05)


def test_border_stays_put_and_motion_is_local():
    img = smooth_image()
    pts = grid_points(40, 30, 88, 66)
    dst = pts.copy()
    dst[5] += [3.0, 4.0]  # move one interior point
    out = PiecewiseAffineWarp(pts, img.shape[:2]).warp(img, dst)
    changed = np.abs(out - img).max(-1) > 1e-3
    assert changed.any()
    np.testing.assert_array_equal(out[0], img[0])
    np.testing.assert_array_equal(out[-1], img[-1])
    np.testing.assert_array_equal(out[:, 0], img[:, 0])
    np.testing.assert_array_equal(out[:, -1], img[:, -1])
    # the moved point now shows what was under its source position
    x, y = dst[5]
    sx, sy = pts[5]
    np.testing.assert_allclose(out[int(y), int(x)], img[int(sy), int(sx)], atol=6.0)


def test_flips_are_counted_and_areas_signed():
    tri = np.array([[0, 1, 2]])
    assert signed_areas(np.array([[0, 0], [1, 0], [0, 1.0]]), tri)[0] == pytest.approx(0.5)
    pts = grid_points(40, 30, 88, 66)
    w = PiecewiseAffineWarp(pts, (96, 128))
    assert w.n_flipped(pts) == 0
    dst = pts.copy()
    dst[5] = pts[10] + [5, 5]  # drag a point across its neighbours
    assert w.n_flipped(dst) > 0


def test_mesh_points_allow_a_shut_source_mouth():
    """Source points that coincide (a closed mouth) warp fine when the mesh comes from an open shape."""
    src = np.array([[40, 40], [60, 40], [50, 48], [50, 48], [40, 56], [60, 56]], np.float64)  # 2,3 coincide
    open_ = src.copy()
    open_[2, 1] -= 3
    open_[3, 1] += 3
    img = smooth_image()
    w = PiecewiseAffineWarp(src, img.shape[:2], mesh_points=open_)
    out = w.warp(img, open_)
    assert out.shape == img.shape and np.isfinite(out).all()
    assert triangulate(np.concatenate([open_, w.border])).shape == w.triangles.shape


def test_bad_shapes_raise():
    w = PiecewiseAffineWarp(grid_points(40, 30, 88, 66), (96, 128))
    with pytest.raises(InputError):
        w.warp(np.zeros((10, 10, 3), np.uint8), grid_points(40, 30, 88, 66))
    with pytest.raises(InputError):
        w.maps(np.zeros((3, 2)))
