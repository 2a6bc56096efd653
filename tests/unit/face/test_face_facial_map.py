"""Facial maps: landmark polylines + template Canny edges, at any resolution."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.face.facial_map import GROUPS, draw_landmark_groups, facial_map


def face_points() -> np.ndarray:
    """(68,2) landmarks of a schematic face in a 128x128 frame."""
    t = np.linspace(0, np.pi, 17)
    lm = np.zeros((68, 2))
    lm[0:17] = np.stack([64 - 40 * np.cos(t), 60 + 45 * np.sin(t)], 1)  # jaw
    lm[17:22] = np.stack([np.linspace(34, 56, 5), np.full(5, 40)], 1)
    lm[22:27] = np.stack([np.linspace(72, 94, 5), np.full(5, 40)], 1)
    lm[27:31] = np.stack([np.full(4, 64), np.linspace(50, 70, 4)], 1)
    lm[31:36] = np.stack([np.linspace(56, 72, 5), np.full(5, 74)], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:6]
    lm[36:42] = np.stack([45 + 8 * np.cos(a), 52 + 3 * np.sin(a)], 1)
    lm[42:48] = np.stack([83 + 8 * np.cos(a), 52 + 3 * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 13)[:12]
    lm[48:60] = np.stack([64 + 18 * np.cos(a), 92 + 8 * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 9)[:8]
    lm[60:68] = np.stack([64 + 12 * np.cos(a), 92 + 4 * np.sin(a)], 1)
    return lm + 0.5


def template() -> np.ndarray:
    """128x128 RGB uint8 with a bright square (edges at x,y = 20 and 108) and a dark box over the mouth."""
    img = np.full((128, 128, 3), 30, np.uint8)
    img[20:108, 20:108] = 200
    img[84:100, 50:78] = 0
    return img


def test_rgb_map_channels():
    fm = facial_map(face_points(), template())
    assert fm.shape == (128, 128, 3) and fm.dtype == np.uint8
    assert set(np.unique(fm)) <= {0, 255}
    lm = face_points()
    for i in (0, 8, 30, 36, 48, 62):  # polylines pass through the landmarks
        x, y = (lm[i] - 0.5).round().astype(int)
        assert fm[y - 1 : y + 2, x - 1 : x + 2, 0].max() == 255
    assert fm[20:108, 19:22, 1].max() == 255  # template square edge is kept (no face mask by default)
    assert fm[84:100, 48:80, 1].max() == 0  # mouth edges of the template are masked
    assert fm[..., 2].sum() > 0 and fm[:80, :, 2].max() == 0  # mouth channel: lips only


def test_groups_layout_and_face_mask():
    fm = facial_map(face_points(), template(), layout="groups", mask_outside_face=True, mask_mouth=False)
    assert fm.shape == (128, 128, len(GROUPS) + 1)
    assert fm[84:100, 48:80, -1].max() == 255  # mouth edges kept when not masked
    assert fm[:, :12, -1].max() == 0 and fm[:12, :, -1].max() == 0  # outside the face: no edges
    for g in range(len(GROUPS)):
        assert fm[..., g].max() == 255


def test_any_resolution_scales_landmarks():
    lm = face_points()
    big = facial_map(lm, template(), out_hw=(256, 256))
    small = facial_map(lm, template())
    assert big.shape == (256, 256, 3)
    ys, xs = np.nonzero(big[..., 0])
    ys2, xs2 = np.nonzero(small[..., 0])
    assert xs.mean() == pytest.approx(2 * xs2.mean() + 0.5, abs=2)
    assert ys.mean() == pytest.approx(2 * ys2.mean() + 0.5, abs=2)


def test_draw_and_errors():
    g = draw_landmark_groups(face_points(), (128, 128))
    assert g.shape == (128, 128, 9)
    with pytest.raises(InputError, match="68"):
        facial_map(np.zeros((20, 2)), template())
    with pytest.raises(InputError, match="uint8"):
        facial_map(face_points(), template().astype(np.float32))
    with pytest.raises(InputError, match="layout"):
        facial_map(face_points(), template(), layout="nope")
