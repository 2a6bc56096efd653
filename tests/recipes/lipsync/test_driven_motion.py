"""Driven landmarks: lip gap set by `open`, jaw follows, head still, eyelids blink."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.recipes.lipsync.driven.motion import MotionConfig, blink_track, drive_landmarks, face_axes, inner_gap


def template(angle_deg: float = 0.0) -> np.ndarray:
    """A rough frontal 68-point face (IOD 60 px), rotated by ``angle_deg`` about (100,100): (68,2)."""
    lm = np.zeros((68, 2))
    jaw_t = np.linspace(-1, 1, 17)
    lm[0:17] = np.stack([100 + 70 * jaw_t, 90 + 90 * (1 - jaw_t**2) ** 0.5 * 0.9 + 10], 1)
    lm[17:27] = np.stack([np.linspace(45, 155, 10), np.full(10, 70.0)], 1)
    lm[27:36] = np.stack([np.full(9, 100.0), np.linspace(85, 130, 9)], 1)
    for base, cx in ((36, 70), (42, 130)):  # eyes: corners and lids
        lm[base : base + 6] = [
            [cx - 12, 90],
            [cx - 5, 85],
            [cx + 5, 85],
            [cx + 12, 90],
            [cx + 5, 95],
            [cx - 5, 95],
        ]
    ox = np.linspace(75, 125, 7)
    lm[48:55] = np.stack([ox, 150 - 6 * np.sin(np.linspace(0, np.pi, 7))], 1)  # outer upper
    lm[55:60] = np.stack([ox[5:0:-1], 150 + 8 * np.sin(np.linspace(0, np.pi, 7))[5:0:-1]], 1)  # outer lower
    lm[60:65] = np.stack([np.linspace(80, 120, 5), np.full(5, 150.0)], 1)
    lm[65:68] = lm[[63, 62, 61]]  # shut mouth: inner lower = inner upper
    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (lm - 100) @ r.T + 100


def test_face_axes_follow_head_tilt():
    ux, uy, iod = face_axes(template(30))
    np.testing.assert_allclose(ux, [np.cos(np.pi / 6), np.sin(np.pi / 6)], atol=1e-9)
    np.testing.assert_allclose(uy, [-np.sin(np.pi / 6), np.cos(np.pi / 6)], atol=1e-9)
    assert iod == pytest.approx(60.0)


@pytest.mark.parametrize("angle", [0.0, -20.0])
def test_gap_follows_open_and_head_stays_still(angle):
    cfg = MotionConfig()
    tpl = template(angle)
    op = np.array([0.0, 0.5, 1.0])
    out = drive_landmarks(tpl, op, np.zeros(3), None, cfg)
    assert out.shape == (3, 68, 2) and out.dtype == np.float32
    gaps = inner_gap(out)
    np.testing.assert_allclose(gaps[0], 0.0, atol=1e-4)
    assert gaps[1] == pytest.approx(0.5 * cfg.max_gap_iod * 60, rel=0.15)  # middle pair moves fully
    assert gaps[2] == pytest.approx(cfg.max_gap_iod * 60, rel=0.15)
    fixed = np.r_[np.arange(0, 2), np.arange(15, 48)]  # upper face, nose, eyes (no blink)
    np.testing.assert_allclose(out[:, fixed], np.broadcast_to(tpl[fixed], (3, len(fixed), 2)), atol=1e-4)
    chin_drop = (out[2, 8] - tpl[8]) @ face_axes(tpl)[1]
    assert chin_drop > 0.5 * cfg.jaw_follow * cfg.max_gap_iod * 60  # jaw follows the lower lip


def test_open_template_closes_and_spread_changes_width():
    tpl = template()
    tpl[65:68, 1] += 8  # template mouth open by 8 px
    out = drive_landmarks(tpl, np.zeros(2), np.array([1.0, -1.0]), None)
    assert inner_gap(out[0]) == pytest.approx(0.0, abs=0.3)
    w_spread = out[0, 54, 0] - out[0, 48, 0]
    w_round = out[1, 54, 0] - out[1, 48, 0]
    assert w_spread > tpl[54, 0] - tpl[48, 0] > w_round


def test_blinks_close_the_eyes_and_follow_rate():
    b, count = blink_track(25 * 60, 25.0, np.random.default_rng(0))
    assert b.shape == (1500,) and 0 <= b.min() and b.max() == pytest.approx(1.0, abs=0.05)
    assert 8 <= count <= 25  # ~15 blinks a minute
    tpl = template()
    out = drive_landmarks(tpl, np.zeros(2), np.zeros(2), np.array([0.0, 1.0]))
    open_eye = np.linalg.norm(tpl[41] - tpl[37])
    np.testing.assert_allclose(out[0, 36:48], tpl[36:48], atol=1e-4)
    assert np.linalg.norm(out[1, 41] - out[1, 37]) < 0.15 * open_eye
    short, n0 = blink_track(10, 25.0, np.random.default_rng(0))
    assert n0 == 0 and not short.any()


def test_corners_follow_the_opening_instead_of_keeping_a_smile():
    tpl = template()
    tpl[[48, 54, 60, 64], 1] -= 8  # smiling photo: corners 8 px above the lip line
    out = drive_landmarks(tpl, np.array([0.0, 1.0]), np.zeros(2))
    mid_open = out[1, [61, 62, 63, 65, 66, 67], 1].mean()  # middle of the opened lips
    lift_open = mid_open - out[1, [48, 54], 1].mean()  # how far the corners sit above it
    lift_shut = tpl[[61, 62, 63], 1].mean() - tpl[[48, 54], 1].mean()  # 8 px in the template
    assert lift_shut == pytest.approx(8.0)
    assert lift_open < 0.4 * lift_shut  # the smile does not stay on a wide-open mouth
    np.testing.assert_allclose(out[0, [48, 54]], tpl[[48, 54]], atol=1e-4)  # closed: the photo's own corners
    assert out[1, 54, 0] - out[1, 48, 0] < 0.95 * (tpl[54, 0] - tpl[48, 0])  # corners move in as the jaw drops
