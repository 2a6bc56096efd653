"""Driven landmarks: move the mouth, jaw and eyelids of a template face (68-point layout).

Motion is expressed in a face frame (x along the eye line, y down the face) and in units of the
inter-ocular distance (IOD), so it scales with the face and follows a tilted head. The head
itself stays still; only the jaw, lips and eyelids move.

Mouth: ``open`` in [0, 1] sets the inner-lip gap to ``open * max_gap_iod`` (0 = lips together),
whatever the template's own gap was; the lower lip takes most of the change, the upper lip the
rest, the corners a little, and the chin/jaw contour follows the lower lip, fading out towards the
ears. ``spread`` in [-1, 1] widens (spread) or narrows (rounded) the mouth.
Blinks: eyelids close towards each other; timings follow measured spontaneous blinks (about 15
a minute, Bentivoglio et al. 1997; a fast ~80 ms closing and a slower ~170 ms reopening,
VanderWerf et al. 2003), with log-normal intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2v.face.landmarks import inter_ocular_px

UPPER_LIP = np.array([49, 50, 51, 52, 53, 61, 62, 63])
LOWER_LIP = np.array([55, 56, 57, 58, 59, 65, 66, 67])
CORNERS = np.array([48, 54, 60, 64])
MOUTH = np.arange(48, 68)
JAW = np.arange(2, 15)  # jaw contour below the cheekbones
INNER_PAIRS = np.array([[61, 67], [62, 66], [63, 65]])  # (upper, lower) inner-lip points
UPPER_LIDS = np.array([37, 38, 43, 44])
LOWER_LIDS = np.array([41, 40, 47, 46])  # facing UPPER_LIDS one to one


@dataclass(frozen=True)
class MotionConfig:
    """How far the face moves (lengths in inter-ocular distances, IOD).

    max_gap_iod: inner-lip gap at ``open = 1`` (wide vowel); ~0.4 IOD is a clear /a/.
    upper_lip_share: fraction of the gap change taken by the upper lip (the rest by the lower lip).
    corner_follow: corner drop per unit lower-lip drop.
    jaw_follow: chin drop per unit lower-lip drop (the lips also open by themselves).
    spread_frac: relative mouth-width change at ``spread = +-1``.
    blink_close_frac: fraction of the eye opening closed at the bottom of a blink.
    corner_relax: at full opening, the fraction by which the corners move from their template
        height (e.g. raised in a smile) to the middle of the opened lips: a dropping jaw pulls
        the corners down and in, a held smile on a wide-open mouth looks pasted on (ours).
    corner_narrow_frac: relative mouth-width loss at full opening (the corners move in, ours).
    """

    max_gap_iod: float = 0.4
    upper_lip_share: float = 0.18
    corner_follow: float = 0.35
    jaw_follow: float = 0.75
    spread_frac: float = 0.1
    blink_close_frac: float = 0.9
    corner_relax: float = 0.7
    corner_narrow_frac: float = 0.08


def face_axes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit vectors (right (2,), down (2,)) of the face frame and the IOD in px, from landmarks (68,2)."""
    right_eye = lm[36:42].mean(0)  # (2,)
    left_eye = lm[42:48].mean(0)  # (2,)
    x = left_eye - right_eye  # image-right for an upright face (subject's left eye)
    iod = float(np.linalg.norm(x))
    x = x / max(iod, 1e-9)
    y = np.array([-x[1], x[0]])  # x rotated +90 deg: points down the face in image coords
    return x, y, float(inter_ocular_px(lm))


def inner_gap(lm: np.ndarray) -> np.ndarray:
    """Inner-lip gap in px along the face's down axis: (...,68,2) -> (...,) (can be < 0 if lips cross)."""
    lm = np.asarray(lm, np.float64)
    right = lm[..., 36:42, :].mean(-2)
    left = lm[..., 42:48, :].mean(-2)
    x = left - right  # (...,2)
    y = np.stack([-x[..., 1], x[..., 0]], -1) / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    d = lm[..., INNER_PAIRS[:, 1], :] - lm[..., INNER_PAIRS[:, 0], :]  # (...,3,2)
    return np.einsum("...pk,...k->...p", d, y).mean(-1)  # (...,3)->(...)


def drive_landmarks(
    template: np.ndarray,
    open_: np.ndarray,
    spread: np.ndarray,
    blink: np.ndarray | None = None,
    cfg: MotionConfig = MotionConfig(),
    scale: float = 1.0,
) -> np.ndarray:
    """Landmarks of the template face with the mouth/jaw/eyelids moved.

    template: float (68,2) px (one photo) or (F,68,2) px (a clip, one per frame).
    open_, spread, blink: float (F,) in [0,1], [-1,1], [0,1] (blink 1 = eyes shut).
    scale: multiplies the mouth motion (``motion_scale``).
    Returns float32 (F,68,2) px.
    """
    open_ = np.asarray(open_, np.float64)
    n = len(open_)
    tpl = np.asarray(template, np.float64)
    tpl = np.broadcast_to(tpl, (n, 68, 2)) if tpl.ndim == 2 else tpl  # (F,68,2)
    out = tpl.copy()
    spread = np.asarray(spread, np.float64)
    blink = np.zeros(n) if blink is None else np.asarray(blink, np.float64)
    for f in range(n):  # per frame: each frame of a clip has its own face frame
        p = tpl[f]
        ux, uy, iod = face_axes(p)
        c = p[MOUTH].mean(0)  # (2,) mouth centre
        pu = (p - c) @ ux  # (68,) along the eye line
        pv = (p - c) @ uy  # (68,) down the face
        half_w = max(0.5 * (pu[54] - pu[48]), 1e-6)
        g0 = float(inner_gap(p))
        target = float(np.clip(open_[f], 0, 1)) * cfg.max_gap_iod * iod * scale
        delta = target - max(g0, 0.0)  # px of gap to add (negative: close)
        du = np.zeros(68)  # (68,) displacement along ux
        dv = np.zeros(68)  # (68,) displacement along uy
        prof = 1.0 - 0.6 * np.clip(np.abs(pu) / half_w, 0, 1) ** 2  # (68,) lips move less near corners
        prof[INNER_PAIRS.ravel()] = 1.0  # inner lips move fully: the gap is exactly the target
        dv[LOWER_LIP] = (1 - cfg.upper_lip_share) * delta * prof[LOWER_LIP]
        dv[UPPER_LIP] = -cfg.upper_lip_share * delta * prof[UPPER_LIP]
        dv[CORNERS] = cfg.corner_follow * (1 - cfg.upper_lip_share) * delta
        corner_v = pv[[48, 54]].mean()
        chin_v = pv[8]
        w_jaw = np.clip(
            (pv[JAW] - corner_v) / max(chin_v - corner_v, 1e-6), 0, 1
        )  # (13,) 0 at mouth level, 1 at chin
        dv[JAW] = cfg.jaw_follow * (1 - cfg.upper_lip_share) * max(delta, -0.5 * g0) * w_jaw
        du[MOUTH] = pu[MOUTH] * cfg.spread_frac * float(np.clip(spread[f], -1, 1)) * scale
        amount = float(np.clip(target / max(cfg.max_gap_iod * iod, 1e-9), 0, 1))  # 0 closed .. 1 widest
        mid = float((pv[INNER_PAIRS.ravel()] + dv[INNER_PAIRS.ravel()]).mean())  # middle of the opened lips
        dv[CORNERS] += cfg.corner_relax * amount * (mid - (pv[CORNERS] + dv[CORNERS]))  # smile relaxes
        du[CORNERS] -= cfg.corner_narrow_frac * amount * pu[CORNERS]  # corners move in
        b = float(np.clip(blink[f], 0, 1)) * cfg.blink_close_frac
        lid = p[LOWER_LIDS] - p[UPPER_LIDS]  # (4,2) upper -> lower lid
        out[f] = p + du[:, None] * ux + dv[:, None] * uy  # (68,2)
        out[f, UPPER_LIDS] += 0.85 * b * lid
        out[f, LOWER_LIDS] -= 0.15 * b * lid
    return out.astype(np.float32)


def blink_track(
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    median_interval_s: float = 3.5,
    sigma: float = 0.45,
    min_interval_s: float = 1.2,
    close_ms: float = 80.0,
    hold_ms: float = 30.0,
    open_ms: float = 170.0,
) -> tuple[np.ndarray, int]:
    """Spontaneous blinks: (closure float32 (F,) in [0, 1] at ``fps``, number of blinks).

    Intervals are log-normal (``median_interval_s``, ``sigma``) with a floor; each blink eases
    shut over ``close_ms``, holds ``hold_ms`` and reopens over ``open_ms`` (sine easing).
    """
    t = (np.arange(n_frames) + 0.5) / fps  # (F,) s
    out = np.zeros(n_frames)
    start = float(rng.uniform(0.6, 2.4))
    count = 0
    dur = n_frames / fps
    c, h, o = close_ms / 1000, hold_ms / 1000, open_ms / 1000
    while start + c + h + o < dur:
        x = t - start  # (F,)
        closing = np.clip(x / c, 0, 1)
        opening = np.clip((x - c - h) / o, 0, 1)
        shape = np.where(x < c + h, np.sin(0.5 * np.pi * closing), np.cos(0.5 * np.pi * opening))  # (F,)
        shape[(x < 0) | (x > c + h + o)] = 0
        out = np.maximum(out, shape)
        count += 1
        start += max(min_interval_s, float(rng.lognormal(np.log(median_interval_s), sigma)))
    return out.astype(np.float32), count
