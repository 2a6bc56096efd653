"""Mouth normalisation (lipsync paper) and the mouth PCA: invariances, round trips, reference PCA."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.face.mouth import MouthPCA, MouthPose, denormalize_mouth, normalize_mouth, with_mouth


def face_landmarks(n: int, seed: int = 0) -> np.ndarray:
    """(F,68,2) plausible landmarks: fixed face, mouth opening with 3 latent factors, random pose."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (68, 2)) * 0.3
    base[36:42] = [-0.5, -0.4]
    base[42:48] = [0.5, -0.4]
    modes = rng.standard_normal((3, 20, 2)) * 0.05
    z = rng.standard_normal((n, 3)) * [1.0, 0.5, 0.2]
    lm = np.tile(base, (n, 1, 1))  # (F,68,2)
    lm[:, 48:68] += np.einsum("fk,kpd->fpd", z, modes)
    ang = rng.uniform(-0.3, 0.3, n)
    rot = np.stack([np.stack([np.cos(ang), -np.sin(ang)], -1), np.stack([np.sin(ang), np.cos(ang)], -1)], -2)
    scale = rng.uniform(40, 120, n)[:, None, None]
    shift = rng.uniform(100, 300, (n, 1, 2))
    return np.einsum("fij,fpj->fpi", rot, lm) * scale + shift


def test_normalisation_round_trip_and_pose():
    lm = face_landmarks(30)
    m, pose = normalize_mouth(lm)
    assert m.shape == (30, 20, 2) and m.dtype == np.float32
    np.testing.assert_allclose(denormalize_mouth(m, pose), lm[:, 48:68], atol=1e-3)
    np.testing.assert_allclose(with_mouth(lm, denormalize_mouth(m, pose)), lm, atol=1e-3)
    p = MouthPose.from_landmarks(lm)
    eye_vec = lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1)
    np.testing.assert_allclose(p.scale_px, np.linalg.norm(eye_vec, axis=1))


def test_normalisation_removes_rotation_translation_scale():
    lm = face_landmarks(1)[0]
    a = 0.4
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (lm @ rot.T) * 1.7 + [31.0, -12.0]
    np.testing.assert_allclose(normalize_mouth(moved)[0], normalize_mouth(lm)[0], atol=1e-5)
    # after normalisation the eye line is horizontal: mouth points relative to a level face
    m, _ = normalize_mouth(lm)
    assert np.abs(m).max() < 3


def test_pca_matches_sklearn():
    sk = pytest.importorskip("sklearn.decomposition")
    m, _ = normalize_mouth(face_landmarks(200, seed=1))
    m += np.random.default_rng(2).normal(0, 1e-3, m.shape).astype(np.float32)  # full rank
    ours = MouthPCA(5).fit(m)
    ref = sk.PCA(5).fit(m.reshape(200, 40))
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(
        ours.inverse_transform(ours.transform(m)).reshape(200, 40),
        ref.inverse_transform(ref.transform(m.reshape(200, 40))),
        atol=1e-5,
    )


def test_pca_round_trip_exact_for_low_rank_shapes(tmp_path):
    lm = face_landmarks(100)
    m, pose = normalize_mouth(lm)
    pca = MouthPCA(3).fit(m)  # the synthetic mouths have 3 latent factors
    assert pca.explained_variance_total == pytest.approx(1.0, abs=1e-6)
    z = pca.transform(m)
    assert z.shape == (100, 3) and z.dtype == np.float32
    rec = denormalize_mouth(pca.inverse_transform(z), pose)
    np.testing.assert_allclose(rec, lm[:, 48:68], atol=1e-2)
    pca.save(tmp_path / "pca.json")
    back = MouthPCA.load(tmp_path / "pca.json")
    np.testing.assert_allclose(back.transform(m), z, atol=1e-6)
    np.testing.assert_allclose(back.explained_variance_ratio_, pca.explained_variance_ratio_)


def test_pca_skips_nan_frames_and_errors(tmp_path):
    m, _ = normalize_mouth(face_landmarks(20))
    m[3] = np.nan
    pca = MouthPCA(10).fit(m)
    assert pca.n_samples_ == 19 and pca.n_skipped_ == 1
    assert np.all(np.diff(pca.explained_variance_ratio_) <= 1e-12)
    with pytest.raises(InputError, match="more than 10 frames"):
        MouthPCA(10).fit(m[:5])
    with pytest.raises(InputError, match="not fitted"):
        MouthPCA().transform(m)
    with pytest.raises(InputError, match=r"\(F,20,2\)"):
        pca.transform(np.zeros((4, 68, 2)))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a mouth PCA"):
        MouthPCA.load(tmp_path / "bad.json")
