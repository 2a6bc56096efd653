"""68-point facial landmarks (dlib, iBUG 300-W layout), temporal smoothing and a jitter metric.

Landmarks are float32 ``(68,2)`` x,y in continuous frame pixels (pixel ``i`` spans ``[i, i+1)``),
sequences ``(F,68,2)`` at the video frame rate; NaN rows mark frames without a face.
The predictor ``shape_predictor_68_face_landmarks.dat`` ships with face-recognition-models.
It was trained on dlib HOG boxes; boxes from other detectors work but tighter, square boxes
fit its training distribution best.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

from a2v.errors import InputError, require_file
from a2v.face.detect import face_recognition_model_path, import_dlib

# index ranges of the 68-point layout (end exclusive)
JAW = range(0, 17)
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_LOWER = range(31, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)
MOUTH = range(48, 68)


class DlibLandmarker:
    """dlib's ensemble-of-regression-trees 68-point predictor (Kazemi & Sullivan 2014).

    model_path: a ``.dat`` file; default: the one shipped by face-recognition-models.
    """

    def __init__(self, model_path: str | Path | None = None) -> None:
        self._dlib = import_dlib()
        path = (
            face_recognition_model_path("shape_predictor_68_face_landmarks.dat")
            if model_path is None
            else (require_file(model_path, "dlib landmark model"))
        )
        self._predictor = self._dlib.shape_predictor(str(path))

    def __call__(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """frame uint8 (H,W,3) RGB, box (4,) x0,y0,x1,y1 px -> landmarks float32 (68,2) px."""
        if frame.dtype != np.uint8 or frame.ndim != 3:
            raise InputError(f"landmarks expect an RGB uint8 frame (H,W,3), got {frame.dtype} {frame.shape}")
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        # dlib rectangles use inclusive pixel indices; its points are pixel indices (+0.5 -> continuous)
        shape = self._predictor(np.ascontiguousarray(frame), self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32)  # (68,2)
        return pts + 0.5

    def track(
        self, frames: Sequence[np.ndarray] | np.ndarray, boxes: np.ndarray, progress: bool = False
    ) -> np.ndarray:
        """Landmarks of a face track: frames (F,H,W,3), boxes (F,4) (NaN = no face) -> (F,68,2), NaN rows."""
        from tqdm.auto import tqdm

        if len(frames) != len(boxes):
            raise InputError(f"landmarks: {len(frames)} frames but {len(boxes)} boxes")
        out = np.full((len(boxes), 68, 2), np.nan, np.float32)  # (F,68,2)
        for i in tqdm(range(len(boxes)), disable=not progress, desc="landmarks", unit="fr"):
            if not np.isnan(boxes[i][0]):
                out[i] = self(frames[i], boxes[i])
        return out


def _valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous True runs of a bool (F,) mask as (start, stop) pairs."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def smooth_landmarks(lm: np.ndarray, window_frames: int = 5, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along time of landmarks (F,68,2) -> (F,68,2).

    Each run of frames with a face is smoothed on its own (NaN rows stay NaN); runs shorter than
    the window use the largest odd window that fits (runs shorter than ``polyorder + 2`` are kept).
    A local polynomial fit keeps fast mouth openings better than a moving average.
    """
    out = lm.astype(np.float32).copy()
    for a, b in _valid_runs(~np.isnan(lm[:, 0, 0])):
        win = min(window_frames, b - a)
        win -= 1 - win % 2  # largest odd window <= run length
        if win > polyorder:
            out[a:b] = savgol_filter(lm[a:b], win, polyorder, axis=0, mode="interp")
    return out


def inter_ocular_px(lm: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres (mean of points 36-41 and 42-47): (...,68,2) -> (...,) px."""
    right = lm[..., RIGHT_EYE, :].mean(axis=-2)
    left = lm[..., LEFT_EYE, :].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


def landmark_jitter(lm: np.ndarray, window_frames: int = 9, polyorder: int = 2) -> float:
    """Landmark jitter of a sequence (F,68,2) -> float (fraction of the inter-ocular distance).

    Jitter = mean over frames and points of ``|h[t+1] - h[t]|`` where ``h = lm - SG(lm)`` is the
    high-pass residual left after Savitzky-Golay smoothing (``window_frames``, ``polyorder``),
    each displacement divided by that frame's inter-ocular distance. Smooth motion (head turns,
    mouth opening) is removed by the low-pass part, so only frame-to-frame shake is measured.
    Frames without a face (NaN) are skipped; pairs across a gap are not counted.
    """
    valid = ~np.isnan(lm[:, 0, 0])
    if valid.sum() < 2:
        raise InputError("landmark jitter needs at least 2 frames with a face")
    hp = lm - smooth_landmarks(lm, window_frames, polyorder)  # (F,68,2) high-pass residual
    step = np.linalg.norm(np.diff(hp, axis=0), axis=-1)  # (F,68,2)->(F-1,68)
    iod = inter_ocular_px(lm)  # (F,)
    norm = np.fmax(iod[1:], iod[:-1])[:, None]  # (F-1,1)
    ok = valid[1:] & valid[:-1]
    return float(np.mean(step[ok] / norm[ok]))
