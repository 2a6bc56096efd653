"""Align audio-rate sequences to a video frame rate with exact length rules.

Time conventions (all recipes use these):

* A clip of ``S`` samples at ``sr`` Hz lasts ``S / sr`` s and has
  ``n_frames = round(S / sr * fps)`` video frames (half rounds up; computed with exact
  fractions so 48000 samples at 16 kHz and 25 fps is exactly 75 frames).
* Video frame f covers the interval ``[f / fps, (f + 1) / fps)``.
* Feature row t (centred STFT framing, see :mod:`a2v.audio.features`) sits at ``t / rate`` s.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def _frac(x: float | int | Fraction) -> Fraction:
    """Exact fraction of a rate; floats go through their shortest decimal (29.97 -> 2997/100)."""
    if isinstance(x, Fraction | int):
        return Fraction(x)
    return Fraction(repr(float(x)))


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def num_video_frames(num_samples: int, sr: int, fps: float | Fraction) -> int:
    """Number of video frames for ``num_samples`` audio samples: ``round(S / sr * fps)``, half up."""
    if num_samples < 0 or sr <= 0 or _frac(fps) <= 0:
        raise ValueError(f"need num_samples >= 0, sr > 0, fps > 0; got {num_samples}, {sr}, {fps}")
    return _round_half_up(Fraction(int(num_samples)) * _frac(fps) / int(sr))


def frame_boundaries(n_frames: int, rate_hz: float | Fraction, fps: float | Fraction) -> np.ndarray:
    """Row index where each video frame starts in a ``rate_hz`` sequence: int64 (n_frames + 1,).

    Frame f spans rows ``[b[f], b[f + 1])`` with ``b[f] = round(f * rate_hz / fps)`` (half up).
    """
    ratio = _frac(rate_hz) / _frac(fps)
    return np.array([_round_half_up(f * ratio) for f in range(n_frames + 1)], dtype=np.int64)  # (F+1,)


def frames_per_video_frame(feat_rate_hz: float | Fraction, fps: float | Fraction) -> int:
    """Feature rows per video frame when it is a whole number (100 Hz MFCC at 25 fps -> 4).

    Raises ValueError when ``feat_rate_hz / fps`` is not an integer.
    """
    ratio = _frac(feat_rate_hz) / _frac(fps)
    if ratio.denominator != 1:
        raise ValueError(f"{feat_rate_hz} Hz features are not a whole number of rows per frame at {fps} fps ({float(ratio):.4f})")
    return int(ratio)


def frames_per_window(n_video_frames: int, feat_rate_hz: float | Fraction, fps: float | Fraction) -> int:
    """Feature rows covering ``n_video_frames`` frames; exact (50 frames at 25 fps, 100 Hz -> 200).

    Raises ValueError when the window is not a whole number of feature rows.
    """
    rows = n_video_frames * _frac(feat_rate_hz) / _frac(fps)
    if rows.denominator != 1:
        raise ValueError(f"{n_video_frames} frames at {fps} fps are {float(rows):.4f} rows of {feat_rate_hz} Hz features, not a whole number")
    return int(rows)


def feature_window(
    feats: np.ndarray, start_frame: int, n_video_frames: int, feat_rate_hz: float | Fraction, fps: float | Fraction
) -> np.ndarray:
    """Rows of ``feats`` (T, D) covering video frames ``[start_frame, start_frame + n_video_frames)``.

    Returns (frames_per_window(...), D) starting at row ``round(start_frame * rate / fps)``.
    Rows past the end of ``feats`` repeat its last row (the last video frames of a clip may
    outlast its final feature rows by a fraction of a frame); more than one video frame's
    worth of missing rows raises ValueError.
    """
    n_rows = frames_per_window(n_video_frames, feat_rate_hz, fps)
    start = _round_half_up(start_frame * _frac(feat_rate_hz) / _frac(fps))
    if start < 0 or feats.shape[0] == 0:
        raise ValueError(f"window start {start_frame} / features of length {feats.shape[0]} out of range")
    missing = start + n_rows - feats.shape[0]
    if missing > max(1, math.ceil(_frac(feat_rate_hz) / _frac(fps))):
        raise ValueError(f"window of {n_video_frames} frames from frame {start_frame} needs rows up to "
                         f"{start + n_rows}, features have {feats.shape[0]}")
    idx = np.minimum(np.arange(start, start + n_rows), feats.shape[0] - 1)  # (n_rows,)
    return feats[idx]  # (T,D)->(n_rows,D)


def align_features(
    feats: np.ndarray, feat_rate_hz: float | Fraction, fps: float | Fraction, n_frames: int, mode: str = "linear"
) -> np.ndarray:
    """Resample a feature sequence to one row per video frame.

    feats: (T, D) at ``feat_rate_hz``; returns float32 (n_frames, D), one row per video frame
    at ``fps``. ``mode="linear"`` interpolates each column at the centre of the frame,
    ``(f + 0.5) / fps`` s, holding the first/last row beyond the ends. ``mode="mean"`` averages
    the rows ``[b[f], b[f+1])`` of :func:`frame_boundaries` (at least one row; the last row
    is used past the end). With 100 Hz features at 25 fps "mean" averages exactly 4 rows.
    """
    x = np.asarray(feats, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"align_features expects a non-empty (T, D) array, got {x.shape}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    T = x.shape[0]
    if mode == "linear":
        ratio = float(_frac(feat_rate_hz) / _frac(fps))
        pos = (np.arange(n_frames) + 0.5) * ratio  # (F,) row position of each frame centre
        lo = np.clip(np.floor(pos).astype(np.int64), 0, T - 1)  # (F,)
        hi = np.minimum(lo + 1, T - 1)  # (F,)
        w = np.clip(pos - lo, 0.0, 1.0)[:, None].astype(np.float32)  # (F,1)
        return (x[lo] * (1.0 - w) + x[hi] * w).astype(np.float32)  # (T,D)->(F,D)
    if mode == "mean":
        b = frame_boundaries(n_frames, feat_rate_hz, fps)  # (F+1,)
        start = np.minimum(b[:-1], T - 1)  # (F,)
        end = np.clip(b[1:], start + 1, T)  # (F,)
        csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0, dtype=np.float64)])  # (T+1,D)
        return ((csum[end] - csum[start]) / (end - start)[:, None]).astype(np.float32)  # (T,D)->(F,D)
    raise ValueError(f"unknown mode {mode!r}: use 'linear' or 'mean'")


def envelope(wav: np.ndarray, sr: int, fps: float | Fraction, n_frames: int | None = None, db: bool = False) -> np.ndarray:
    """RMS loudness per video frame (for lip-sync checks: mouth opening vs. loudness).

    wav: float (S,) in [-1, 1] at ``sr`` Hz. Returns float32 (F,) at ``fps``, F = ``n_frames``
    or :func:`num_video_frames`; value f is the RMS of samples ``[b[f], b[f+1])`` with
    ``b = frame_boundaries(F, sr, fps)`` (samples past the end count as zeros). Linear amplitude
    in [0, 1], or dBFS (floor -120 dB) when ``db``.
    """
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"envelope expects mono samples (S,), got shape {x.shape}")
    F = num_video_frames(x.size, sr, fps) if n_frames is None else n_frames
    b = frame_boundaries(F, sr, fps)  # (F+1,)
    sq = np.concatenate([[0.0], np.cumsum(x**2)])  # (S+1,) running energy
    energy = sq[np.minimum(b[1:], x.size)] - sq[np.minimum(b[:-1], x.size)]  # (F,)
    length = np.maximum(b[1:] - b[:-1], 1)  # (F,) frame length in samples, tail zero-padded
    rms = np.sqrt(np.maximum(energy, 0.0) / length)  # (F,)
    if db:
        rms = 20.0 * np.log10(np.maximum(rms, 1e-6))
    return rms.astype(np.float32)
