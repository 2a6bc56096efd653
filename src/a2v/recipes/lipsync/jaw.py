"""Jaw correction (Zheng et al. 2020, §3.2): jawline from mouth shape by multi-linear regression.

The mouth model moves the 20 mouth points only; the chin must follow the opening mouth. Fitted
on the template video's landmarks, in the pose-normalised frame of :mod:`a2v.face.mouth`
(roll removed, nose at the origin, unit eye distance):

    features  x_f = [width_f, height_f, 1]              width = |p54 - p48|, height = |p57 - p51|
    targets   y_f = jaw_f - mean_f(jaw)  (17 points 0-16, flattened to 34 values)
    fit       B = argmin ||X B - Y||^2   (ordinary least squares with intercept, numpy.linalg.lstsq)
    predict   jaw_f = mean jaw + x_f B

Landmarks float32 (F,68,2) frame px; the prediction is mapped back with each frame's pose.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file
from a2v.face.landmarks import JAW
from a2v.face.mouth import MouthPose, normalize_mouth
from a2v.io import write_json_atomic

__all__ = ["JawModel", "mouth_width_height", "normalize_points"]

N_JAW = len(JAW)


def _rot(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (F,)->(F,2,2)


def normalize_points(points: np.ndarray, pose: MouthPose) -> np.ndarray:
    """Any points (F,P,2) px -> pose-normalised float64 (F,P,2): ``R(-angle)(p - nose) / scale``."""
    rel = np.asarray(points, np.float64) - pose.nose_px[:, None]  # (F,P,2)
    return np.einsum("fij,fpj->fpi", _rot(-pose.angle_rad), rel) / pose.scale_px[:, None, None]


def mouth_width_height(mouth: np.ndarray) -> np.ndarray:
    """Normalised mouth (F,20,2) (points 48-67) -> float64 (F,2): corner distance 48-54, lip height 51-57."""
    m = np.asarray(mouth, np.float64)
    w = np.linalg.norm(m[:, 6] - m[:, 0], axis=-1)  # points 54 - 48
    h = np.linalg.norm(m[:, 9] - m[:, 3], axis=-1)  # points 57 - 51
    return np.stack([w, h], axis=1)  # (F,)x2->(F,2)


class JawModel:
    """Jaw points from mouth (width, height). After :meth:`fit`: ``coef_`` float64 (3,34)
    (rows: width, height, intercept), ``mean_jaw_`` (17,2), ``r2_`` (coefficient of determination
    on the fitting frames), ``n_samples_``."""

    def __init__(self) -> None:
        self.coef_: np.ndarray | None = None
        self.mean_jaw_: np.ndarray | None = None
        self.r2_ = float("nan")
        self.n_samples_ = 0

    @staticmethod
    def _design(wh: np.ndarray) -> np.ndarray:
        return np.concatenate([wh, np.ones((len(wh), 1))], axis=1)  # (F,2)->(F,3)

    def fit(self, landmarks: np.ndarray) -> JawModel:
        """Fit on template landmarks (F,68,2) px; frames with NaN are skipped. Needs 3+ frames."""
        lm = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)  # (F,68,2)
        lm = lm[~np.isnan(lm).any(axis=(1, 2))]
        if len(lm) < 3:
            raise InputError(f"jaw regression needs at least 3 frames with a face, got {len(lm)}")
        mouth, pose = normalize_mouth(lm)  # (F,20,2)
        jaw = normalize_points(lm[:, JAW], pose).reshape(len(lm), 2 * N_JAW)  # (F,17,2)->(F,34)
        self.mean_jaw_ = jaw.mean(axis=0).reshape(N_JAW, 2)
        y = jaw - jaw.mean(axis=0)  # (F,34) offsets from the mean jaw
        x = self._design(mouth_width_height(mouth))  # (F,3)
        self.coef_, *_ = np.linalg.lstsq(x, y, rcond=None)  # (3,34)
        res = y - x @ self.coef_
        ss_tot = float((y**2).sum())
        self.r2_ = 1.0 - float((res**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
        self.n_samples_ = len(lm)
        return self

    def _check(self) -> None:
        if self.coef_ is None:
            raise InputError("jaw model is not fitted: call fit() or load() first")

    def predict_normalized(self, mouth: np.ndarray) -> np.ndarray:
        """Normalised mouth (F,20,2) -> normalised jaw float64 (F,17,2)."""
        self._check()
        x = self._design(mouth_width_height(mouth))  # (F,3)
        return (x @ self.coef_).reshape(-1, N_JAW, 2) + self.mean_jaw_  # (F,34)->(F,17,2)

    def predict(self, mouth: np.ndarray, pose: MouthPose) -> np.ndarray:
        """Normalised mouth (F,20,2) + per-frame pose -> jaw points float32 (F,17,2) frame px."""
        jaw = self.predict_normalized(mouth)  # (F,17,2)
        p = np.einsum("fij,fpj->fpi", _rot(pose.angle_rad), jaw) * pose.scale_px[:, None, None]  # (F,17,2)
        return (p + pose.nose_px[:, None]).astype(np.float32)

    def transfer(self, template: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """Jaw for new mouths on a template: template landmarks (F,68,2) px, normalised mouth (F,20,2) -> (F,17,2) px.

        ``jaw = template jaw + f(new mouth) - f(template mouth)`` in the normalised frame, so the
        template keeps its own jaw shape and only the regressed motion is added (works for a model
        fitted on the template itself and for one fitted on other speakers).
        """
        lm = np.asarray(template, np.float64).reshape(-1, 68, 2)  # (F,68,2)
        t_mouth, pose = normalize_mouth(lm)  # (F,20,2)
        jaw = normalize_points(lm[:, JAW], pose) + self.predict_normalized(mouth) - self.predict_normalized(t_mouth)
        p = np.einsum("fij,fpj->fpi", _rot(pose.angle_rad), jaw) * pose.scale_px[:, None, None]  # (F,17,2)
        return (p + pose.nose_px[:, None]).astype(np.float32)

    def apply(self, landmarks: np.ndarray) -> np.ndarray:
        """Landmarks (F,68,2) px with the jaw (0-16) replaced by the prediction from their own mouth."""
        lm = np.array(landmarks, np.float32).reshape(-1, 68, 2)  # (F,68,2)
        mouth, pose = normalize_mouth(lm)
        lm[:, JAW] = self.predict(mouth, pose)
        return lm

    def score(self, landmarks: np.ndarray) -> float:
        """R^2 of the jaw offsets predicted for landmarks (F,68,2) (from their mouths) vs their own jaws."""
        self._check()
        lm = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
        lm = lm[~np.isnan(lm).any(axis=(1, 2))]
        mouth, pose = normalize_mouth(lm)
        jaw = normalize_points(lm[:, JAW], pose)  # (F,17,2)
        pred = self.predict_normalized(mouth)  # (F,17,2)
        y = jaw - jaw.mean(axis=0)
        return 1.0 - float(((jaw - pred) ** 2).sum()) / float((y**2).sum())

    def to_dict(self) -> dict:
        self._check()
        return {"format": "a2v.lipsync_jaw/1", "coef": self.coef_.tolist(), "mean_jaw": self.mean_jaw_.tolist(),
                "r2": self.r2_, "n_samples": self.n_samples_,
                "features": ["mouth_width", "mouth_height", "intercept"]}

    @staticmethod
    def from_dict(d: dict) -> JawModel:
        m = JawModel()
        m.coef_ = np.asarray(d["coef"], np.float64)
        m.mean_jaw_ = np.asarray(d["mean_jaw"], np.float64)
        m.r2_, m.n_samples_ = float(d.get("r2", float("nan"))), int(d.get("n_samples", 0))
        if m.coef_.shape != (3, 2 * N_JAW) or m.mean_jaw_.shape != (N_JAW, 2):
            raise InputError(f"jaw model has coef {m.coef_.shape} / mean_jaw {m.mean_jaw_.shape}, "
                             f"expected (3,{2 * N_JAW}) / ({N_JAW},2)")
        return m

    def save(self, path: str | Path) -> None:
        """Write the fitted model as JSON (atomic)."""
        write_json_atomic(path, self.to_dict())

    @staticmethod
    def load(path: str | Path) -> JawModel:
        p = require_file(path, "jaw model file")
        try:
            return JawModel.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"not a jaw model file: {p} ({e}); refit it with JawModel.fit") from None

