"""Mouth opening and mouth/loudness correlation at the best lag."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.metrics.sync import loudness_envelope, mouth_opening, shuffled_baseline, sync_correlation


def face_with_gap(gap_px: float, iod_px: float = 60.0) -> np.ndarray:
    """68 landmarks (68,2): eyes ``iod_px`` apart, inner lips ``gap_px`` apart vertically."""
    lm = np.zeros((68, 2))
    lm[36:42] = [100 - iod_px / 2, 100]
    lm[42:48] = [100 + iod_px / 2, 100]
    for up, lo, x in ((61, 67, 90), (62, 66, 100), (63, 65, 110)):
        lm[up] = [x, 150]
        lm[lo] = [x, 150 + gap_px]
    return lm


def test_mouth_opening_closed_form_and_nan_rows():
    lm = np.stack(
        [face_with_gap(0), face_with_gap(12), face_with_gap(12, iod_px=120), np.full((68, 2), np.nan)]
    )
    op = mouth_opening(lm)
    assert op.dtype == np.float32 and op.shape == (4,)
    np.testing.assert_allclose(op[:3], [0.0, 0.2, 0.1], atol=1e-6)  # gap / inter-ocular distance
    assert np.isnan(op[3])
    with pytest.raises(InputError):
        mouth_opening(np.zeros((3, 20, 2)))


def test_sync_correlation_finds_the_lag():
    rng = np.random.default_rng(0)
    env = np.convolve(rng.standard_normal(200), np.ones(3) / 3, mode="same")
    opening = np.roll(env, 3)  # mouth 3 frames after the sound
    opening[:3] = 0
    corr, lag = sync_correlation(opening, env, max_lag_frames=5)
    assert lag == 3 and corr > 0.95
    corr_neg, lag_neg = sync_correlation(np.roll(env, -2), env, max_lag_frames=5)
    assert lag_neg == -2 and corr_neg > 0.95
    corr0, lag0 = sync_correlation(opening, env, max_lag_frames=0)  # no search: lag 0 only
    assert lag0 == 0 and corr0 < 0.5


def test_sync_correlation_skips_nan_and_handles_constant():
    rng = np.random.default_rng(1)
    env = rng.standard_normal(100)
    op = env.copy()
    op[10:20] = np.nan  # frames without a face
    corr, lag = sync_correlation(op, env, 2)
    assert corr == pytest.approx(1.0) and lag == 0
    c, k = sync_correlation(np.ones(50), rng.standard_normal(50), 2)
    assert np.isnan(c) and k == 0
    with pytest.raises(InputError):
        sync_correlation(np.ones(5), np.ones(6))


def test_unrelated_signals_are_near_zero_and_shuffling_destroys_sync():
    rng = np.random.default_rng(2)
    env = np.convolve(rng.standard_normal(400), np.ones(4) / 4, mode="same")
    other = np.convolve(rng.standard_normal(400), np.ones(4) / 4, mode="same")
    assert abs(sync_correlation(other, env, 0)[0]) < 0.15
    assert shuffled_baseline(env, env, max_lag_frames=0, seeds=range(5)) < 0.2
    assert sync_correlation(env, env, 0)[0] == pytest.approx(1.0)


def test_loudness_envelope_range_and_rate():
    sr, fps = 16000, 25.0
    t = np.arange(sr) / sr
    wav = (0.5 * np.sin(2 * np.pi * 220 * t) * (t > 0.5)).astype(np.float32)  # silence, then a tone
    env = loudness_envelope(wav, sr, fps, 25, floor_db=-50.0)
    assert env.shape == (25,) and env.max() == pytest.approx(0.0, abs=0.1)
    assert env[:12].max() == -50.0 and env[13:].min() > -1.0
