"""Painted mouth interior: upper and lower teeth and a lit tongue, not a flat dark hole."""

from __future__ import annotations

import cv2
import numpy as np
from test_driven_motion import template

from a2v.recipes.lipsync.driven.interior import MouthColors, paint_mouth
from a2v.recipes.lipsync.driven.motion import drive_landmarks, face_axes, inner_gap


def test_open_mouth_shows_upper_and_lower_teeth_and_a_tongue():
    tpl = template()  # shut mouth, IOD 60 px
    img = np.zeros((220, 200, 3), np.uint8)
    img[:] = (205, 160, 140)  # skin
    cv2.fillPoly(img, [np.round(tpl[48:60]).astype(np.int32)], (170, 85, 90))  # lips
    colors = MouthColors.from_face(img, tpl)
    drv = drive_landmarks(tpl, np.array([1.0]), np.zeros(1))[0]  # wide open
    _, down, iod = face_axes(drv)
    gap = float(inner_gap(drv))
    out = paint_mouth(img, drv, gap, iod, colors, down).astype(np.float64)

    def at(depth: float) -> np.ndarray:  # colour on the mouth's centre line, depth 0 upper lip .. 1 lower
        x, y = np.round(drv[62] + depth * (drv[66] - drv[62])).astype(int)
        return out[y, x]

    lum = {d: at(d).mean() for d in (0.1, 0.35, 0.65, 0.93)}
    assert lum[0.1] > 150  # upper teeth
    assert lum[0.93] > 110 and lum[0.93] < lum[0.1]  # lower teeth, in the lower lip's shadow
    tongue, cavity = at(0.65), at(0.35)
    assert tongue[0] > tongue[1] + 25  # reddish tongue
    assert tongue.mean() > cavity.mean() + 15 and cavity.mean() < 60  # lit tongue in front of a dark throat
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(drv[60:68]).astype(np.int32)], 1)
    assert out[mask > 0].mean(1).std() > 25  # not a flat hole
    np.testing.assert_array_equal(paint_mouth(img, drv, 0.0, iod, colors, down), img)  # no extra opening: untouched
