"""dlib 68-point landmarks on a real photo; Savitzky-Golay smoothing; the jitter metric."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.face.landmarks import (
    MOUTH,
    DlibLandmarker,
    inter_ocular_px,
    landmark_jitter,
    smooth_landmarks,
)

FACE = np.array([175, 60, 270, 175], np.float32)  # the astronaut's face, by hand


@pytest.fixture(scope="module")
def landmarker():
    pytest.importorskip("dlib")
    return DlibLandmarker()


def test_dlib_landmarks_on_astronaut(landmarker, astronaut, mtcnn):
    box = mtcnn.detect(astronaut)[0].boxes[0]
    lm = landmarker(astronaut, box)
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert np.all((lm[:, 0] > FACE[0] - 10) & (lm[:, 0] < FACE[2] + 10))
    assert np.all((lm[:, 1] > FACE[1] - 10) & (lm[:, 1] < FACE[3] + 10))
    eyes_y, mouth_y, chin_y = lm[36:48, 1].mean(), lm[MOUTH, 1].mean(), lm[8, 1]
    assert eyes_y < lm[30, 1] < mouth_y < chin_y  # eyes, nose tip, mouth, chin from top to bottom
    assert 25 < inter_ocular_px(lm) < 50
    # shifting the frame and the box shifts the landmarks by the same amount
    shifted = np.roll(astronaut, (7, 11), axis=(0, 1))
    lm2 = landmarker(shifted, box + np.float32([11, 7, 11, 7]))
    np.testing.assert_allclose(lm2 - lm, np.tile([11, 7], (68, 1)), atol=1.01)


def test_track_leaves_nan_for_frames_without_face(landmarker, astronaut):
    frames = np.stack([astronaut, astronaut])  # (2,H,W,3)
    boxes = np.stack([FACE, np.full(4, np.nan, np.float32)])
    lm = landmarker.track(frames, boxes)
    assert lm.shape == (2, 68, 2) and not np.isnan(lm[0]).any() and np.isnan(lm[1]).all()
    with pytest.raises(InputError, match="boxes"):
        landmarker.track(frames, boxes[:1])


def synthetic_sequence(n: int = 40, noise_px: float = 0.0, seed: int = 0) -> np.ndarray:
    """(F,68,2) landmarks: a fixed face moving on a parabola plus optional white noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 100, (68, 2))
    base[36:42] = [30, 40]  # right eye centre (30,40), left eye (70,40): inter-ocular 40 px
    base[42:48] = [70, 40]
    t = np.arange(n)[:, None, None]
    motion = np.concatenate([0.5 * t + 0.02 * t**2, 0.1 * t], axis=-1)  # (F,1,2) quadratic path
    return (base + motion + noise_px * rng.standard_normal((n, 68, 2))).astype(np.float32)


def test_smoothing_keeps_quadratic_motion_and_reduces_noise():
    clean = synthetic_sequence()
    np.testing.assert_allclose(smooth_landmarks(clean, 5, 2), clean, atol=1e-3)  # SG is exact on degree <= 2
    noisy = synthetic_sequence(noise_px=1.0)
    err_raw = np.abs(noisy - clean).mean()
    err_smooth = np.abs(smooth_landmarks(noisy, 7, 2) - clean).mean()
    assert err_smooth < 0.75 * err_raw


def test_smoothing_respects_gaps():
    lm = synthetic_sequence(12)
    lm[5] = np.nan
    out = smooth_landmarks(lm, 5, 2)
    assert np.isnan(out[5]).all() and not np.isnan(out[[0, 4, 6, 11]]).any()


def test_jitter_zero_for_smooth_motion_and_grows_with_noise():
    assert landmark_jitter(synthetic_sequence()) == pytest.approx(0, abs=1e-5)
    j1 = landmark_jitter(synthetic_sequence(200, noise_px=0.4))
    j2 = landmark_jitter(synthetic_sequence(200, noise_px=0.8))
    assert j2 == pytest.approx(2 * j1, rel=0.1)  # linear in the noise amplitude
    # white noise sigma: E|n[t+1]-n[t]| ~ sqrt(pi) sigma in 2-D, shrunk by the SG residual; normalised by 40 px
    assert 0.2 * np.sqrt(np.pi) * 0.4 / 40 < j1 < np.sqrt(np.pi) * 0.4 / 40
    with pytest.raises(InputError, match="2 frames"):
        landmark_jitter(synthetic_sequence(1))


def test_missing_landmark_model_file(tmp_path):
    pytest.importorskip("dlib")
    with pytest.raises(InputError, match="not found"):
        DlibLandmarker(tmp_path / "missing.dat")
