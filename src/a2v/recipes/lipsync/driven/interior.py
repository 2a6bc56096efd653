"""Paint the inside of a mouth opened by the warp: dark oral cavity, upper and lower teeth, tongue.

A warp can only stretch the pixels it has: opening a closed mouth would stretch the lip line.
Where the driven inner-lip gap exceeds the template's, the inner-lip polygon is filled with a
cavity colour (the template's lip colour, darkened towards the middle), the tongue (an ellipse
resting on the floor of the mouth, lip-coloured, lit from the front so its tip is brighter than
its back), a narrow band of lower teeth above the lower lip (partly hidden by it, so shaded) and
a band of upper teeth under the upper lip; all blended in as the extra opening grows and softened
by a small blur so edges match the photo's sharpness.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SHIFT = 4  # fillPoly sub-pixel bits
INNER = np.arange(60, 68)  # inner-lip ring: 60 corner, 61-63 upper, 64 corner, 65-67 lower
UPPER_INNER = np.array([60, 61, 62, 63, 64])
LOWER_INNER = np.array([60, 67, 66, 65, 64])


@dataclass(frozen=True)
class MouthColors:
    """RGB float (3,) colours in [0, 255] used inside the mouth."""

    cavity: np.ndarray
    teeth: np.ndarray
    tongue: np.ndarray | None = None  # default: the cavity colour lifted towards the lip colour

    @staticmethod
    def from_face(image: np.ndarray, lm: np.ndarray) -> MouthColors:
        """Colours matched to a face: image uint8 (H,W,3) RGB, landmarks (68,2) px in that image.

        Cavity = the mean outer-lip colour at 30 %; teeth = the brightest half of the pixels inside
        the lips when the mouth shows them (inner gap > 0.05 IOD), else off-white at the face's
        brightness.
        """
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [_fix(lm[48:60])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.fillPoly(mask, [_fix(lm[60:68])], 0, lineType=cv2.LINE_8, shift=_SHIFT)
        lips = image[mask > 0].astype(np.float64)  # (P,3)
        lip = lips.mean(0) if len(lips) else np.array([150.0, 80.0, 80.0])
        skin = image[_fix_box(lm[[1, 15, 29, 8]], image.shape)].reshape(-1, 3).astype(np.float64)
        bright = float(np.clip(skin.mean() / 170.0, 0.45, 1.0)) if skin.size else 1.0
        teeth = np.array([228.0, 222.0, 210.0]) * bright
        inner = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(inner, [_fix(lm[60:68])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        px = image[inner > 0].astype(np.float64)  # (P,3) what the open template mouth shows
        gap = np.mean([np.linalg.norm(lm[b] - lm[a]) for a, b in ((61, 67), (62, 66), (63, 65))])
        iod = np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))
        if len(px) >= 8 and gap > 0.05 * iod:
            lum = px.mean(1)  # (P,)
            teeth = px[lum >= np.median(lum)].mean(0)
        return MouthColors(cavity=lip * 0.3, teeth=teeth, tongue=lip * 0.72)


def _fix(pts: np.ndarray) -> np.ndarray:
    """Continuous px (N,2) -> OpenCV fixed-point pixel-index vertices int32 (N,2)."""
    return np.round((np.asarray(pts, np.float64) - 0.5) * (1 << _SHIFT)).astype(np.int32)


def _fix_box(pts: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Bounding box of points (N,2) as a pair of slices clipped to an image of ``shape``."""
    x0, y0 = np.clip(np.floor(pts.min(0)).astype(int), 0, None)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int), [shape[1], shape[0]])
    return slice(y0, max(y1, y0)), slice(x0, max(x1, x0))


def paint_mouth(
    image: np.ndarray,
    lm: np.ndarray,
    extra_gap_px: float,
    iod_px: float,
    colors: MouthColors,
    down: np.ndarray,
) -> np.ndarray:
    """Paint the mouth interior of ``image`` (uint8 (H,W,3) RGB, warped to landmarks ``lm`` (68,2) px).

    extra_gap_px: driven inner-lip gap minus the template's (px); <= 0 leaves the image unchanged.
    iod_px: inter-ocular distance (px) setting the scale; down: unit (2,) down-the-face vector.
    Returns a new uint8 (H,W,3) image.
    """
    alpha = float(np.clip(extra_gap_px / (0.05 * iod_px), 0.0, 1.0))
    if alpha <= 0:
        return image
    box = _fix_box(np.concatenate([lm[48:68] - 4, lm[48:68] + 4]), image.shape)
    off = np.array([box[1].start, box[0].start], np.float64)
    sub = image[box].astype(np.float32)  # (h,w,3)
    if sub.size == 0:
        return image
    p = lm.astype(np.float64) - off  # landmarks in the sub-image
    h, w = sub.shape[:2]
    cav = np.zeros((h, w), np.float32)
    cv2.fillPoly(cav, [_fix(p[INNER])], 1.0, lineType=cv2.LINE_AA, shift=_SHIFT)
    gap = max(float(np.mean([(p[b] - p[a]) @ down for a, b in ((61, 67), (62, 66), (63, 65))])), 0.0)
    teeth_h = min(0.4 * gap, 0.1 * iod_px)  # visible upper teeth height, px
    upper = p[UPPER_INNER]
    teeth = np.zeros((h, w), np.float32)
    cv2.fillPoly(
        teeth, [_fix(np.concatenate([upper, upper[::-1] + teeth_h * down]))], 1.0, cv2.LINE_AA, shift=_SHIFT
    )
    sigma = max(0.5, 0.02 * iod_px)
    cav = cv2.GaussianBlur(cav, (0, 0), sigma)  # (h,w) soft edge
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)  # (h,w) each
    right = np.array([down[1], -down[0]])  # (2,) along the lips
    half_w = max(0.5 * float(np.linalg.norm(p[64] - p[60])), 1.0)
    across = np.abs((np.stack([xs + 0.5, ys + 0.5], -1) - 0.5 * (p[60] + p[64])) @ right) / half_w  # (h,w) 0 centre, 1 corner
    recede = np.clip(1.0 - across**2, 0.0, 1.0) ** 0.5  # (h,w) teeth fade into the dark towards the corners
    teeth = cv2.GaussianBlur(teeth, (0, 0), sigma) * cav * recede  # (h,w) teeth inside the cavity only
    depth = ((np.stack([xs + 0.5, ys + 0.5], -1) - p[62]) @ down) / max(
        gap, 1.0
    )  # (h,w) 0 at upper lip, 1 at lower
    shade = (1.0 - 0.45 * np.clip(np.sin(np.pi * np.clip(depth, 0, 1)), 0, 1))[..., None]  # (h,w,1)
    inside = colors.cavity[None, None, :] * shade  # (h,w,3)
    # tongue: ellipse on the floor of the mouth, brighter towards its front (the lower lip)
    width = 2.0 * half_w
    centre = p[66] - 0.2 * gap * down  # (2,)
    tongue = np.zeros((h, w), np.float32)
    ang = float(np.degrees(np.arctan2(right[1], right[0])))
    axes = (max(1, round(0.36 * width * (1 << _SHIFT))), max(1, round(0.32 * gap * (1 << _SHIFT))))
    cv2.ellipse(tongue, _fix(centre[None])[0].tolist(), axes, ang, 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
    tongue = cv2.GaussianBlur(tongue, (0, 0), sigma) * cav  # (h,w)
    lit = np.clip(0.55 + 0.45 * (depth - 0.5) / 0.5, 0.55, 1.0)[..., None]  # (h,w,1) front brighter
    t_col = colors.tongue if colors.tongue is not None else 0.5 * (colors.cavity / 0.3 + colors.cavity)
    inside = inside * (1 - tongue[..., None]) + (t_col * lit) * tongue[..., None]
    # lower teeth: a narrow band above the lower lip, in the lip's shadow
    lower = p[LOWER_INNER]
    low_h = min(0.18 * gap, 0.06 * iod_px)  # visible lower teeth height, px
    lteeth = np.zeros((h, w), np.float32)
    cv2.fillPoly(lteeth, [_fix(np.concatenate([lower, lower[::-1] - low_h * down]))], 1.0, cv2.LINE_AA, shift=_SHIFT)
    lteeth = cv2.GaussianBlur(lteeth, (0, 0), sigma) * cav * recede  # (h,w)
    inside = inside * (1 - lteeth[..., None]) + (0.8 * colors.teeth) * lteeth[..., None]
    inside = inside * (1 - teeth[..., None]) + colors.teeth * teeth[..., None]
    a = (alpha * cav)[..., None]  # (h,w,1)
    out = image.copy()
    out[box] = np.clip(np.rint(sub * (1 - a) + inside * a), 0, 255).astype(np.uint8)
    return out
