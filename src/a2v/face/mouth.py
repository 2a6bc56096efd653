"""Mouth-shape features of the lipsync paper (Zheng et al. 2020, "A Neural Lip-Sync Framework for
Synthesizing Photorealistic Virtual News Anchors", ICPR 2020): the 20 mouth landmarks (48-67) with
in-plane rotation removed, relative to the nose centre and scale-normalised, compressed by a PCA
fitted per person / dataset (the paper keeps ~99% of the variance with few components).

Pose per frame (:class:`MouthPose`) -- the part the features drop and the inverse needs back:
    angle_rad: roll of the line from the right-eye centre (points 36-41) to the left-eye centre (42-47),
    nose_px:   nose centre = mean of the nine nose points 27-35, frame px,
    scale_px:  inter-ocular distance (eye centre to eye centre), frame px.
Normalised mouth ``m = R(-angle) (p - nose) / scale`` (unitless, ~[-1, 1]); inverse
``p = scale R(angle) m + nose``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file
from a2v.face.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE
from a2v.io import write_json_atomic

N_MOUTH = 20


def _rot(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (...,2,2) for angles (...,) in radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (...,)->(...,2,2)


@dataclass(frozen=True)
class MouthPose:
    """Per-frame pose: angle_rad float64 (F,), nose_px float64 (F,2), scale_px float64 (F,)."""

    angle_rad: np.ndarray
    nose_px: np.ndarray
    scale_px: np.ndarray

    @staticmethod
    def from_landmarks(lm: np.ndarray) -> MouthPose:
        """Pose of landmarks (F,68,2) (or (68,2) -> F=1)."""
        lm = np.asarray(lm, np.float64).reshape(-1, 68, 2)  # (F,68,2)
        right = lm[:, RIGHT_EYE].mean(axis=1)  # (F,2)
        left = lm[:, LEFT_EYE].mean(axis=1)  # (F,2)
        d = left - right
        nose = lm[:, 27:36].mean(axis=1)  # (F,2)
        return MouthPose(np.arctan2(d[:, 1], d[:, 0]), nose, np.linalg.norm(d, axis=1))


def normalize_mouth(lm: np.ndarray) -> tuple[np.ndarray, MouthPose]:
    """Landmarks (F,68,2) px -> normalised mouth float32 (F,20,2) and the pose to undo it."""
    lm = np.asarray(lm, np.float64).reshape(-1, 68, 2)  # (F,68,2)
    pose = MouthPose.from_landmarks(lm)
    if np.any(pose.scale_px[~np.isnan(pose.scale_px)] <= 0):
        raise InputError("mouth normalisation: eye centres coincide (degenerate landmarks)")
    rel = lm[:, MOUTH] - pose.nose_px[:, None]  # (F,20,2)
    m = np.einsum("fij,fpj->fpi", _rot(-pose.angle_rad), rel) / pose.scale_px[:, None, None]  # (F,20,2)
    return m.astype(np.float32), pose


def denormalize_mouth(mouth: np.ndarray, pose: MouthPose) -> np.ndarray:
    """Normalised mouth (F,20,2) + pose -> mouth points float32 (F,20,2) in frame px."""
    m = np.asarray(mouth, np.float64).reshape(-1, N_MOUTH, 2)  # (F,20,2)
    p = np.einsum("fij,fpj->fpi", _rot(pose.angle_rad), m) * pose.scale_px[:, None, None]  # (F,20,2)
    return (p + pose.nose_px[:, None]).astype(np.float32)


def with_mouth(lm: np.ndarray, mouth_px: np.ndarray) -> np.ndarray:
    """Landmarks (F,68,2) with points 48-67 replaced by ``mouth_px`` (F,20,2) -> (F,68,2)."""
    out = np.array(lm, np.float32).reshape(-1, 68, 2)  # (F,68,2)
    out[:, MOUTH] = mouth_px
    return out


class MouthPCA:
    """PCA of normalised mouth shapes (F,20,2) flattened to 40 values per frame.

    Plain numpy SVD: a few lines, and keeps scikit-learn out of the dependencies (the test checks
    it against ``sklearn.decomposition.PCA``). Attributes after :meth:`fit`:
    mean_ float64 (40,), components_ float64 (K,40) orthonormal rows, explained_variance_ (K,),
    explained_variance_ratio_ (K,), n_samples_ (frames used).
    """

    def __init__(self, n_components: int = 10) -> None:
        if not 1 <= n_components <= 2 * N_MOUTH:
            raise InputError(f"mouth PCA n_components must be in 1..{2 * N_MOUTH}, got {n_components}")
        self.n_components = int(n_components)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.explained_variance_: np.ndarray | None = None
        self.explained_variance_ratio_: np.ndarray | None = None
        self.n_samples_ = 0
        self.n_skipped_ = 0

    @staticmethod
    def _flat(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[-2:] != (N_MOUTH, 2):
            raise InputError(f"mouth PCA expects mouth shapes (F,20,2), got {x.shape}")
        return x.reshape(-1, 2 * N_MOUTH)  # (F,20,2)->(F,40)

    def fit(self, mouth: np.ndarray) -> MouthPCA:
        """Fit on normalised mouths (F,20,2); frames with NaN are skipped (count in ``n_skipped_``)."""
        x = self._flat(mouth)  # (F,40)
        ok = ~np.isnan(x).any(axis=1)
        self.n_skipped_ = int((~ok).sum())
        x = x[ok]
        if len(x) <= self.n_components:
            raise InputError(
                f"mouth PCA needs more than {self.n_components} frames with a face, got {len(x)}"
            )
        self.mean_ = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)  # (F,40) = U S Vt
        var = s**2 / (len(x) - 1)  # (min(F,40),)
        self.components_ = vt[: self.n_components]  # (K,40)
        self.explained_variance_ = var[: self.n_components]
        self.explained_variance_ratio_ = var[: self.n_components] / var.sum()
        self.n_samples_ = int(len(x))
        return self

    def _check(self) -> None:
        if self.components_ is None:
            raise InputError("mouth PCA is not fitted: call fit() or load() first")

    @property
    def explained_variance_total(self) -> float:
        """Fraction of the variance kept by the K components (paper: ~0.99)."""
        self._check()
        return float(self.explained_variance_ratio_.sum())

    def transform(self, mouth: np.ndarray) -> np.ndarray:
        """Normalised mouths (F,20,2) -> coefficients float32 (F,K)."""
        self._check()
        return ((self._flat(mouth) - self.mean_) @ self.components_.T).astype(np.float32)  # (F,40)->(F,K)

    def inverse_transform(self, coeffs: np.ndarray) -> np.ndarray:
        """Coefficients (F,K) -> normalised mouths float32 (F,20,2)."""
        self._check()
        c = np.asarray(coeffs, np.float64).reshape(-1, self.n_components)  # (F,K)
        x = c @ self.components_ + self.mean_  # (F,K)->(F,40)
        return x.reshape(-1, N_MOUTH, 2).astype(np.float32)  # (F,40)->(F,20,2)

    def to_dict(self) -> dict:
        self._check()
        return {
            "format": "a2v.mouth_pca/1",
            "n_components": self.n_components,
            "n_samples": self.n_samples_,
            "mean": self.mean_.tolist(),
            "components": self.components_.tolist(),
            "explained_variance": self.explained_variance_.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio_.tolist(),
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted PCA as JSON (atomic; float64 values, round-trips exactly)."""
        write_json_atomic(path, self.to_dict())

    @staticmethod
    def load(path: str | Path) -> MouthPCA:
        p = require_file(path, "mouth PCA file")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            pca = MouthPCA(int(d["n_components"]))
            pca.mean_ = np.asarray(d["mean"], np.float64)
            pca.components_ = np.asarray(d["components"], np.float64)
            pca.explained_variance_ = np.asarray(d["explained_variance"], np.float64)
            pca.explained_variance_ratio_ = np.asarray(d["explained_variance_ratio"], np.float64)
            pca.n_samples_ = int(d.get("n_samples", 0))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"not a mouth PCA file: {p} ({e}); refit it with MouthPCA.fit") from None
        if pca.components_.shape != (pca.n_components, 2 * N_MOUTH):
            raise InputError(f"mouth PCA file {p} has components of shape {pca.components_.shape}")
        return pca
