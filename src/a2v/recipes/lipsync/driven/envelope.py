"""Jaw opening from the loudness envelope: works for any language, no recognition needed.

Loudness per video frame (RMS, :func:`a2v.audio.envelope`) in dB relative to a robust peak (the
95th percentile of the frames, so one click does not set the scale) is mapped linearly from
``floor_db`` (closed) to 0 dB (fully open), then smoothed with an asymmetric one-pole follower:
the jaw opens fast (``attack_ms``) and closes slower (``release_ms``), as jaws do. Speech
loudness tracks jaw opening because open vowels are the loudest segments (the sonority scale).
"""

from __future__ import annotations

import math

import numpy as np

from a2v.audio import envelope


def loudness_db(wav: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS loudness per video frame in dB relative to the 95th-percentile frame: float32 (F,), <= ~0."""
    env = envelope(np.asarray(wav, np.float32), sr, fps, n_frames)  # (S,)->(F,) linear RMS
    db = 20.0 * np.log10(np.maximum(env, 1e-6))  # (F,)
    ref = float(np.percentile(db, 95)) if db.size else 0.0
    return (db - ref).astype(np.float32)


def follow(x: np.ndarray, fps: float, attack_ms: float, release_ms: float) -> np.ndarray:
    """Asymmetric one-pole smoother (envelope follower) of (F,) at ``fps``: rise with ``attack_ms``,
    fall with ``release_ms`` time constants. Returns float32 (F,)."""
    a_up = math.exp(-1000.0 / (max(attack_ms, 1e-3) * fps))  # pole for rising input
    a_dn = math.exp(-1000.0 / (max(release_ms, 1e-3) * fps))  # pole for falling input
    out = np.empty(len(x), np.float32)
    y = float(x[0]) if len(x) else 0.0
    for i, v in enumerate(np.asarray(x, np.float64)):  # sequential recursion: F is small (frames)
        a = a_up if v > y else a_dn
        y = a * y + (1 - a) * v
        out[i] = y
    return out


def envelope_opening(
    wav: np.ndarray,
    sr: int,
    fps: float,
    n_frames: int,
    floor_db: float = -40.0,
    gamma: float = 1.3,
    attack_ms: float = 20.0,
    release_ms: float = 60.0,
) -> np.ndarray:
    """Jaw opening per video frame from loudness: float32 (F,) in [0, 1] at ``fps``.

    wav: float (S,) in [-1, 1] at ``sr`` Hz. Frames ``floor_db`` dB or more below the robust peak
    are closed (0); the peak is 1; ``gamma`` > 1 keeps quiet consonants less open than vowels.
    """
    rel = loudness_db(wav, sr, fps, n_frames)  # (F,) dB re peak
    lin = np.clip((rel - floor_db) / -floor_db, 0.0, 1.0) ** gamma  # (F,) in [0,1]
    return np.clip(follow(lin, fps, attack_ms, release_ms), 0.0, 1.0)
