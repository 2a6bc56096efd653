"""Loudness -> jaw opening: closed in silence, open on loud frames, fast attack / slow release."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.recipes.lipsync.driven.envelope import envelope_opening, follow, loudness_db


def bursts(sr: int = 16000) -> np.ndarray:
    """2 s: silence, a loud 220 Hz burst (0.5-1.0 s), a 20 dB quieter one (1.3-1.6 s), silence."""
    t = np.arange(2 * sr) / sr
    tone = np.sin(2 * np.pi * 220 * t)
    amp = 0.5 * ((t >= 0.5) & (t < 1.0)) + 0.05 * ((t >= 1.3) & (t < 1.6))
    return (tone * amp).astype(np.float32)


def test_opening_follows_loudness():
    op = envelope_opening(bursts(), 16000, 25.0, 50)
    assert op.shape == (50,) and op.dtype == np.float32
    assert op.min() >= 0 and op.max() <= 1
    assert op[:10].max() < 0.01  # silence closed
    assert op[20] > 0.9  # loud burst wide open
    assert 0.1 < op[36] < 0.7 * op[20]  # 20 dB quieter: partly open
    assert op[48] < 0.05  # closed again


def test_loudness_is_relative_to_a_robust_peak():
    db = loudness_db(bursts(), 16000, 25.0, 50)
    assert db[20] == pytest.approx(0.0, abs=0.5)
    assert db[36] == pytest.approx(-20.0, abs=1.0)  # 20*log10(0.05/0.5)


def test_follower_attack_faster_than_release():
    step = np.r_[np.zeros(5), np.ones(20), np.zeros(20)]
    y = follow(step, 25.0, attack_ms=20.0, release_ms=80.0)
    rise = int(np.argmax(y > 0.9)) - 5  # frames to reach 90 %
    fall = int(np.argmax(y[25:] < 0.1))  # frames to fall below 10 %
    assert rise < fall
    np.testing.assert_allclose(follow(np.full(10, 0.3), 25.0, 20.0, 80.0), 0.3, atol=1e-6)
