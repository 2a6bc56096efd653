"""Square face crops with a margin, resized, and the inverse warp to paste faces back.

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i+1)`` and its centre is ``i + 0.5``
(the convention of the boxes in :mod:`a2v.face.detect`). A crop of side ``s`` px starting at
``(x0, y0)`` and resized to ``size_px`` is the similarity ``u = k (x - x0)`` with ``k = size_px / s``.
OpenCV's ``warpAffine`` indexes pixel centres by integers, so the matrix handed to it is
``T(-0.5) @ M @ T(+0.5)``; both forms are kept explicit below.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from a2v.errors import InputError


def square_box(box: np.ndarray, margin_frac: float = 0.25) -> np.ndarray:
    """Square around a face box: centre kept, side = longer box side * (1 + 2 * margin_frac).

    box: float (4,) x0,y0,x1,y1 px -> float64 (4,) square x0,y0,x1,y1 px (may leave the frame).
    """
    b = np.asarray(box, np.float64)
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    half = max(b[2] - b[0], b[3] - b[1]) * (1 + 2 * margin_frac) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def _h(m: np.ndarray) -> np.ndarray:
    """(2,3) affine -> (3,3) homogeneous."""
    return np.vstack([m, [0.0, 0.0, 1.0]])


_SHIFT_TO_CENTRES = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])  # integer index -> continuous
_SHIFT_TO_INDEX = np.array([[1.0, 0, -0.5], [0, 1.0, -0.5], [0, 0, 1.0]])  # continuous -> integer index


@dataclass(frozen=True)
class CropTransform:
    """Frame -> face crop similarity for one frame.

    matrix: float64 (2,3) continuous frame coords -> continuous crop coords (``u = k (x - x0)``).
    size_px: side of the square crop in pixels. frame_hw: (H, W) of the frame.
    """

    matrix: np.ndarray
    size_px: int
    frame_hw: tuple[int, int]

    @staticmethod
    def from_box(
        box: np.ndarray, frame_hw: tuple[int, int], size_px: int = 256, margin_frac: float = 0.25
    ) -> CropTransform:
        """Crop of the square :func:`square_box` around ``box`` (x0,y0,x1,y1 px), resized to ``size_px``."""
        if not np.all(np.isfinite(box)):
            raise InputError("cannot crop a frame without a face box (NaN box): pass that frame through")
        sq = square_box(box, margin_frac)
        k = size_px / (sq[2] - sq[0])
        m = np.array([[k, 0.0, -k * sq[0]], [0.0, k, -k * sq[1]]])
        return CropTransform(m, int(size_px), (int(frame_hw[0]), int(frame_hw[1])))

    @property
    def inverse(self) -> np.ndarray:
        """float64 (2,3) continuous crop coords -> continuous frame coords."""
        return np.linalg.inv(_h(self.matrix))[:2]

    def _cv_matrix(self, m: np.ndarray) -> np.ndarray:
        """Continuous-coordinate affine -> OpenCV pixel-index affine (2,3)."""
        return (_SHIFT_TO_INDEX @ _h(m) @ _SHIFT_TO_CENTRES)[:2]

    def points_to_crop(self, pts: np.ndarray) -> np.ndarray:
        """Points (...,2) in frame px -> crop px (same shape)."""
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    def points_to_frame(self, pts: np.ndarray) -> np.ndarray:
        """Points (...,2) in crop px -> frame px (same shape)."""
        inv = self.inverse
        return pts @ inv[:, :2].T + inv[:, 2]

    def apply(self, frame: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """Cut the face: frame (H,W,C) -> crop (size_px,size_px,C), same dtype; bilinear, low-passed when
        shrinking; ``border`` fills the parts of the square outside the frame."""
        if frame.shape[:2] != self.frame_hw:
            raise InputError(f"crop made for frames {self.frame_hw}, got a frame of shape {frame.shape}")
        k = self.matrix[0, 0]
        if k < 1:  # shrinking: warpAffine has no area filter, so low-pass first (skimage's sigma rule)
            sigma = (1 / k - 1) / 2
            frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma)
        return cv2.warpAffine(
            frame,
            self._cv_matrix(self.matrix),
            (self.size_px, self.size_px),
            flags=cv2.INTER_LINEAR,
            borderMode=border,
        )  # (H,W,C)->(S,S,C)

    def feather_mask(self, feather_px: float) -> np.ndarray:
        """Crop-space blend weight float32 (size_px,size_px) in [0,1]: 1 inside, linear ramp over
        ``feather_px`` crop pixels to 0 at the crop border."""
        c = np.arange(self.size_px) + 0.5
        d = np.minimum(c, self.size_px - c)  # distance of pixel centres to the nearest border
        ramp = np.clip(d / max(feather_px, 1e-6), 0, 1) if feather_px > 0 else np.ones_like(d)
        return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)  # (S,)->(S,S)

    def paste_back(self, frame: np.ndarray, face: np.ndarray, feather_px: float = 16.0) -> np.ndarray:
        """Warp ``face`` (size_px,size_px,C) back into ``frame`` (H,W,C) with a feathered edge.

        Returns a new uint8 (H,W,C) frame (same dtype as ``frame``); pixels outside the crop are
        untouched, the outer ``feather_px`` crop pixels blend linearly into the original.
        """
        if face.shape[:2] != (self.size_px, self.size_px):
            raise InputError(f"face crop must be ({self.size_px},{self.size_px},C), got {face.shape}")
        if frame.shape[:2] != self.frame_hw:
            raise InputError(f"crop made for frames {self.frame_hw}, got a frame of shape {frame.shape}")
        h, w = self.frame_hw
        inv = self._cv_matrix(self.inverse)
        face_f = face.astype(np.float32)
        if self.matrix[0, 0] > 1:  # the face is shrunk on the way back: anti-alias first
            sigma = (self.matrix[0, 0] - 1) / 2
            face_f = cv2.GaussianBlur(face_f, (0, 0), sigmaX=sigma, sigmaY=sigma)
        warped = cv2.warpAffine(face_f, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(
            self.feather_mask(feather_px), inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )  # (S,S)->(H,W)
        if warped.ndim == 2:
            warped = warped[..., None]  # (H,W)->(H,W,1)
        a = alpha[..., None]  # (H,W)->(H,W,1)
        out = a * warped + (1 - a) * frame.astype(np.float32).reshape(h, w, -1)
        if np.issubdtype(frame.dtype, np.integer):
            out = np.clip(np.rint(out), np.iinfo(frame.dtype).min, np.iinfo(frame.dtype).max)
        return out.astype(frame.dtype).reshape(frame.shape)


def crop_track(
    frames: np.ndarray, boxes: np.ndarray, size_px: int = 256, margin_frac: float = 0.25
) -> tuple[np.ndarray, list[CropTransform | None]]:
    """Crop every frame of a track: frames uint8 (F,H,W,3), boxes (F,4) (NaN = no face).

    Returns crops uint8 (F,size_px,size_px,3) (zeros where no face) and one transform per frame
    (None where no face).
    """
    hw = frames.shape[1:3]
    crops = np.zeros((len(frames), size_px, size_px, frames.shape[3]), frames.dtype)  # (F,S,S,3)
    transforms: list[CropTransform | None] = []
    for i, (f, b) in enumerate(zip(frames, boxes, strict=True)):
        if np.isnan(b[0]):
            transforms.append(None)
            continue
        t = CropTransform.from_box(b, hw, size_px, margin_frac)
        crops[i] = t.apply(f)
        transforms.append(t)
    return crops, transforms
