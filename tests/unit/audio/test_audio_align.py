"""Frame-rate alignment: exact length rules (closed forms and property tests)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2v.audio import (
    align_features,
    envelope,
    feature_window,
    frame_boundaries,
    frames_per_video_frame,
    frames_per_window,
    mfcc,
    num_video_frames,
)

FPS = st.sampled_from([25, 30, 24, 50, 29.97, Fraction(30000, 1001), 12.5])


def test_num_video_frames_examples() -> None:
    assert num_video_frames(48000, 16000, 25) == 75  # a 3 s GRID clip
    assert num_video_frames(47648, 16000, 25) == 74  # 2.978 s -> 74.45 -> 74
    assert num_video_frames(320, 16000, 25) == 1  # exactly half a frame rounds up
    assert num_video_frames(319, 16000, 25) == 0
    assert num_video_frames(0, 16000, 25) == 0
    assert num_video_frames(1001 * 16000, 16000, Fraction(30000, 1001)) == 30000
    assert num_video_frames(16000, 16000, 29.97) == 30
    with pytest.raises(ValueError):
        num_video_frames(100, 0, 25)


@given(st.integers(0, 10_000_000), st.sampled_from([8000, 16000, 22050, 44100, 48000]), FPS)
@settings(max_examples=200, deadline=None)
def test_num_video_frames_is_round_of_duration(n: int, sr: int, fps) -> None:
    exact = Fraction(n) * Fraction(repr(float(fps)) if isinstance(fps, float) else fps) / sr
    f = num_video_frames(n, sr, fps)
    assert abs(Fraction(f) - exact) <= Fraction(1, 2)
    assert f == math.floor(exact + Fraction(1, 2))


def test_frames_per_window_and_per_frame() -> None:
    assert frames_per_video_frame(100, 25) == 4
    assert frames_per_window(50, 100, 25) == 200  # lip-sync: 200 MFCC rows <-> 50 frames
    assert frames_per_window(5, 100, 25) == 20
    assert frames_per_window(3, 100, 30) == 10
    with pytest.raises(ValueError):
        frames_per_video_frame(100, 30)
    with pytest.raises(ValueError):
        frames_per_window(1, 100, 30)


def test_mean_pooling_of_mfcc_uses_exactly_four_rows() -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 48000).astype(np.float32)
    feats = mfcc(x)  # (301, 13) at 100 Hz
    n = num_video_frames(x.size, 16000, 25)
    out = align_features(feats, 100, 25, n, mode="mean")
    assert out.shape == (75, 13)
    np.testing.assert_allclose(out, feats[:300].reshape(75, 4, 13).mean(axis=1), rtol=1e-5, atol=1e-4)


def test_linear_interpolation_of_a_ramp_is_exact() -> None:
    t = np.arange(301, dtype=np.float32)
    feats = np.stack([t, 2 * t + 1], axis=1)  # (T,2) rows are linear in time
    out = align_features(feats, 100, 25, 75, mode="linear")
    centre = (np.arange(75) + 0.5) * 4  # row position of frame centres
    np.testing.assert_allclose(out[:, 0], centre, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], 2 * centre + 1, rtol=1e-6)
    # Past the end the last row is held.
    long = align_features(feats, 100, 25, 80, mode="linear")
    np.testing.assert_allclose(long[-1], feats[-1])


@given(st.integers(1, 400), st.integers(0, 200), st.sampled_from([50, 100, 62.5]), FPS, st.sampled_from(["linear", "mean"]))
@settings(max_examples=150, deadline=None)
def test_align_features_length_and_range(T: int, n_frames: int, rate, fps, mode: str) -> None:
    feats = np.random.default_rng(T).standard_normal((T, 3)).astype(np.float32)
    out = align_features(feats, rate, fps, n_frames, mode=mode)
    assert out.shape == (n_frames, 3) and out.dtype == np.float32
    if n_frames:
        assert np.all(out <= feats.max(axis=0) + 1e-5) and np.all(out >= feats.min(axis=0) - 1e-5)


def test_align_features_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        align_features(np.zeros((0, 3)), 100, 25, 5)
    with pytest.raises(ValueError):
        align_features(np.zeros((4, 3)), 100, 25, 1, mode="nearest")


def test_feature_window() -> None:
    feats = np.arange(301, dtype=np.float32)[:, None]  # (T,1)
    w = feature_window(feats, 10, 5, 100, 25)
    np.testing.assert_array_equal(w[:, 0], np.arange(40, 60))
    tail = feature_window(feats, 74, 1, 100, 25)  # rows 296..299
    np.testing.assert_array_equal(tail[:, 0], [296, 297, 298, 299])
    padded = feature_window(feats[:298], 74, 1, 100, 25)  # two rows short: last row repeated
    np.testing.assert_array_equal(padded[:, 0], [296, 297, 297, 297])
    with pytest.raises(ValueError):
        feature_window(feats, 70, 10, 100, 25)  # 20 rows past the end


def test_frame_boundaries_cover_the_clip() -> None:
    b = frame_boundaries(75, 16000, 25)
    assert b[0] == 0 and b[-1] == 48000 and np.all(np.diff(b) == 640)


def test_envelope_closed_form() -> None:
    sr, fps = 16000, 25
    amp = np.repeat([0.0, 0.5, 0.25, 1.0], 640)  # 4 frames of constant |x|
    sign = np.where(np.arange(amp.size) % 2 == 0, 1.0, -1.0)
    env = envelope((amp * sign).astype(np.float32), sr, fps)
    assert env.shape == (4,) and env.dtype == np.float32
    np.testing.assert_allclose(env, [0.0, 0.5, 0.25, 1.0], rtol=1e-6)
    np.testing.assert_allclose(envelope((amp * sign).astype(np.float32), sr, fps, db=True)[1:], 20 * np.log10([0.5, 0.25, 1.0]), atol=1e-4)
    # A sine of amplitude A over whole periods has RMS A / sqrt(2); the missing tail counts as zeros.
    t = np.arange(960) / sr
    env2 = envelope((0.8 * np.sin(2 * np.pi * 250 * t)).astype(np.float32), sr, fps, n_frames=2)
    np.testing.assert_allclose(env2, [0.8 / np.sqrt(2), 0.8 / np.sqrt(2) * np.sqrt(320 / 640)], rtol=1e-4)


@given(st.integers(0, 50_000), FPS)
@settings(max_examples=100, deadline=None)
def test_envelope_length(n: int, fps) -> None:
    x = np.full(n, 0.1, np.float32)
    env = envelope(x, 16000, fps)
    assert env.shape == (num_video_frames(n, 16000, fps),)
    assert np.all(env <= 0.1 + 1e-6)
