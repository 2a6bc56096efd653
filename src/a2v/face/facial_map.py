"""Facial maps of the lipsync paper (Zheng et al. 2020): the 68-landmark sketch drawn as polylines
plus the Canny edges of the template frame, the image the neural renderer translates into a face.

Output channels (uint8 in {0, 255}, any output resolution):
    ``layout="rgb"``    (H,W,3): 0 = all landmark polylines, 1 = Canny edges of the template,
                        2 = mouth polylines only (48-67);
    ``layout="groups"`` (H,W,10): 0..8 = one channel per group of :data:`GROUPS` (in order), 9 = edges.
Template edges can be masked outside the face (convex hull of the landmarks, dilated) and inside
the mouth (so the mouth comes from the landmarks only, not from the template's mouth).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from a2v.errors import InputError

# (name, point indices, closed polyline) of the 68-point layout
GROUPS: tuple[tuple[str, range, bool], ...] = (
    ("jaw", range(0, 17), False),
    ("right_brow", range(17, 22), False),
    ("left_brow", range(22, 27), False),
    ("nose_bridge", range(27, 31), False),
    ("nose_lower", range(30, 36), False),
    ("right_eye", range(36, 42), True),
    ("left_eye", range(42, 48), True),
    ("outer_lips", range(48, 60), True),
    ("inner_lips", range(60, 68), True),
)
_MOUTH_GROUPS = {"outer_lips", "inner_lips"}


def draw_landmark_groups(lm: np.ndarray, hw: tuple[int, int], thickness_px: int = 1) -> np.ndarray:
    """Polylines of each landmark group: lm (68,2) continuous px -> uint8 (H,W,9) in {0,255}."""
    h, w = hw
    out = np.zeros((len(GROUPS), h, w), np.uint8)  # (9,H,W)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    for g, (_, idx, closed) in enumerate(GROUPS):
        # continuous coords -> pixel indices, in fixed point
        pts = np.rint((lm[list(idx)] - 0.5) * (1 << shift)).astype(np.int32)  # (P,2)
        cv2.polylines(out[g], [pts], closed, 255, thickness_px, cv2.LINE_8, shift)
    return out.transpose(1, 2, 0)  # (9,H,W)->(H,W,9)


def template_edges(
    template: np.ndarray, low: float = 50.0, high: float = 150.0, blur_sigma_px: float = 1.0
) -> np.ndarray:
    """Canny edges of an RGB uint8 (H,W,3) template -> uint8 (H,W) in {0,255} (OpenCV Canny, L2 gradient)."""
    gray = cv2.cvtColor(template, cv2.COLOR_RGB2GRAY)  # (H,W,3)->(H,W)
    if blur_sigma_px > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur_sigma_px)
    return cv2.Canny(gray, low, high, L2gradient=True)


def _hull_mask(pts: np.ndarray, hw: tuple[int, int], dilate_px: int) -> np.ndarray:
    """Filled convex hull of points (N,2) px -> bool (H,W), dilated by ``dilate_px``."""
    mask = np.zeros(hw, np.uint8)
    hull = cv2.convexHull(np.rint(pts - 0.5).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        mask = cv2.dilate(mask, k)
    return mask.astype(bool)


def facial_map(
    landmarks: np.ndarray,
    template: np.ndarray,
    out_hw: tuple[int, int] | None = None,
    layout: Literal["rgb", "groups"] = "rgb",
    thickness_px: int = 1,
    mask_outside_face: bool = False,
    mask_mouth: bool = True,
    face_dilate_frac: float = 0.1,
    canny_low: float = 50.0,
    canny_high: float = 150.0,
) -> np.ndarray:
    """Facial map of one frame.

    landmarks: (68,2) px in ``template`` coordinates (e.g. the template's own landmarks with the
        mouth replaced by predicted points, see :func:`a2v.face.mouth.with_mouth`).
    template: RGB uint8 (h,w,3) frame whose edges are kept (hair, clothes, background detail).
    out_hw: output size (H, W); default the template size. Landmarks are scaled to it and the
        template is resized (area) before Canny, so edges are as thin at any resolution.
    face_dilate_frac: hull dilation as a fraction of the inter-ocular distance (mask margins).
    Returns uint8 (H,W,3) or (H,W,10) in {0,255} (channels in the module docstring).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise InputError(f"facial map needs 68 finite landmarks (68,2), got {lm.shape}")
    if template.dtype != np.uint8 or template.ndim != 3 or template.shape[2] != 3:
        raise InputError(
            f"facial map template must be RGB uint8 (H,W,3), got {template.dtype} {template.shape}"
        )
    h0, w0 = template.shape[:2]
    h, w = out_hw if out_hw is not None else (h0, w0)
    if (h, w) != (h0, w0):
        lm = lm * np.array([w / w0, h / h0])
        interp = cv2.INTER_AREA if h < h0 else cv2.INTER_LINEAR
        template = cv2.resize(template, (w, h), interpolation=interp)  # (h0,w0,3)->(H,W,3)
    groups = draw_landmark_groups(lm, (h, w), thickness_px)  # (H,W,9)
    edges = template_edges(template, canny_low, canny_high)  # (H,W)
    iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))
    margin = max(1, int(round(face_dilate_frac * iod)))
    if mask_outside_face:
        edges[~_hull_mask(lm, (h, w), 2 * margin)] = 0
    if mask_mouth:
        edges[_hull_mask(lm[48:68], (h, w), margin)] = 0
    if layout == "groups":
        return np.concatenate([groups, edges[..., None]], axis=-1)  # (H,W,9)+(H,W,1)->(H,W,10)
    if layout == "rgb":
        mouth = [g for g, (name, _, _) in enumerate(GROUPS) if name in _MOUTH_GROUPS]
        return np.stack([groups.max(-1), edges, groups[..., mouth].max(-1)], axis=-1)  # (H,W,9)->(H,W,3)
    raise InputError(f"unknown facial map layout '{layout}' (choose 'rgb' or 'groups')")
