"""Jaw regression: recovers a known linear map from mouth (width, height) to jaw offsets, under any pose."""

from __future__ import annotations

import numpy as np
import pytest
from lipsync_testutil import base_face

from a2v.errors import InputError
from a2v.face.mouth import normalize_mouth
from a2v.recipes.lipsync.jaw import JawModel, mouth_width_height


def posed(lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normalised faces (F,68,2) -> px with a random roll, scale and shift per frame."""
    n = len(lm)
    ang = rng.uniform(-0.3, 0.3, n)
    rot = np.stack([np.stack([np.cos(ang), -np.sin(ang)], -1), np.stack([np.sin(ang), np.cos(ang)], -1)], -2)
    return np.einsum("fij,fpj->fpi", rot, lm) * rng.uniform(50, 120, (n, 1, 1)) + rng.uniform(100, 300, (n, 1, 2))


def known_faces(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Faces in the normalised frame (base face: eye distance 1, nose at 0) whose jaw = mean + [w,h,1] C."""
    rng = np.random.default_rng(seed)
    base = base_face()
    lm = np.tile(base, (n, 1, 1))  # (F,68,2)
    sx, sy = rng.uniform(0.8, 1.3, n), rng.uniform(0.5, 2.0, n)
    centre = base[48:68].mean(0)
    lm[:, 48:68] = (base[48:68] - centre) * np.stack([sx, sy], 1)[:, None] + centre
    wh = mouth_width_height(lm[:, 48:68])  # (F,2)
    coef = rng.standard_normal((3, 34)) * 0.2
    lm[:, 0:17] = base[0:17] + (np.concatenate([wh, np.ones((n, 1))], 1) @ coef).reshape(n, 17, 2)
    return lm, coef


def test_fit_recovers_known_map_under_pose():
    rng = np.random.default_rng(1)
    lm_norm, coef = known_faces()
    lm = posed(lm_norm, rng)
    jaw = JawModel().fit(lm)
    np.testing.assert_allclose(jaw.coef_[:2], coef[:2], atol=1e-6)  # slopes of width and height
    assert jaw.r2_ == pytest.approx(1.0, abs=1e-9) and jaw.n_samples_ == 60
    np.testing.assert_allclose(jaw.apply(lm), lm, atol=1e-3)  # px
    mouth, _ = normalize_mouth(lm)
    np.testing.assert_allclose(jaw.predict_normalized(mouth), lm_norm[:, 0:17], atol=1e-5)
    # a template with the same pose: new mouths move its jaw by the regressed offset
    new_mouth = mouth[::-1].copy()
    out = jaw.transfer(lm, new_mouth)
    np.testing.assert_allclose(out, jaw.apply(np.concatenate([lm[:, :48], posed_mouth(lm, new_mouth)], 1))[:, 0:17],
                               atol=1e-3)


def posed_mouth(lm: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    from a2v.face.mouth import MouthPose, denormalize_mouth

    return denormalize_mouth(mouth, MouthPose.from_landmarks(lm))


def test_noisy_fit_score_and_save_load(tmp_path):
    rng = np.random.default_rng(2)
    lm_norm, coef = known_faces(200, seed=3)
    lm_norm[:, 0:17] += rng.standard_normal((200, 17, 2)) * 0.002
    lm = posed(lm_norm, rng)
    jaw = JawModel().fit(lm)
    np.testing.assert_allclose(jaw.coef_[:2], coef[:2], atol=0.02)
    assert 0.9 < jaw.r2_ < 1.0 and jaw.score(lm) == pytest.approx(jaw.r2_, abs=1e-6)
    jaw.save(tmp_path / "jaw.json")
    back = JawModel.load(tmp_path / "jaw.json")
    np.testing.assert_allclose(back.apply(lm), jaw.apply(lm), atol=1e-4)


def test_errors():
    with pytest.raises(InputError, match="at least 3 frames"):
        JawModel().fit(np.full((5, 68, 2), np.nan))
    with pytest.raises(InputError, match="not fitted"):
        JawModel().predict_normalized(np.zeros((1, 20, 2)))
