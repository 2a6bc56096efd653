"""Inputs shared by the image recipe tests (a module of its own: `conftest` names collide across folders)."""

from __future__ import annotations

import numpy as np


def tone(freq_hz: float, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """float32 (S,) 16 kHz: a sine at ``freq_hz`` plus a little noise, amplitude about 0.5."""
    t = np.arange(round(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(2 * np.pi * freq_hz * t) + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)
