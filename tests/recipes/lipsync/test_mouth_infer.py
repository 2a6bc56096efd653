"""Windowed and streaming stage 1 inference: tiling, equality with one pass, latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.errors import InputError
from a2v.recipes.lipsync.mouth_infer import StreamingMouthPredictor, iter_predict, plan_windows, predict_long
from a2v.recipes.lipsync.mouth_model import MouthGenerator, MouthModelConfig, build_generator

LENGTHS = [40, 200, 360, 372, 1000, 1028]  # < W, = W, W + hop, irregular tails


def model(dilations=(1,)) -> MouthGenerator:
    torch.manual_seed(0)
    return MouthGenerator(MouthModelConfig(channels=16, fc_hidden=16, dilations=dilations)).eval()


def mfcc(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((t, 13)).astype(np.float32)


def one_pass(g: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return g(torch.from_numpy(x)[None])[0].numpy()  # (T,13)->(1,F,10)->(F,10)


@pytest.mark.parametrize("t", [*LENGTHS, 4, 204, 520])
@pytest.mark.parametrize("overlap", [40, 0, 80])
def test_plan_tiles_all_frames_with_margins(t: int, overlap: int) -> None:
    plans = plan_windows(t, 200, overlap)
    m = overlap // 8
    frames = np.concatenate([np.arange(p.start // 4 + p.keep_from, p.start // 4 + p.keep_to) for p in plans])
    np.testing.assert_array_equal(frames, np.arange(t // 4))  # every frame once, in order
    for i, p in enumerate(plans):
        assert p.start >= 0 and p.start + p.length <= t and p.start % 4 == 0
        if i > 0:
            assert p.keep_from >= m  # inner window ends drop at least the margin
        if i < len(plans) - 1:
            assert p.length // 4 - p.keep_to >= m
    if t > 200:
        assert plans[-1].start + 200 == t  # last window flush with the end


def test_window_stitching_equals_one_pass_when_context_fits() -> None:
    g = model((1,))
    assert max(g.context_video_frames) <= 40 // 8  # the model's context fits in the 5-frame margin
    for t in LENGTHS:
        x = mfcc(t, seed=t)
        got = predict_long(g, x, batch_windows=3, progress=False)
        assert got.shape == (t // 4, 10) and got.dtype == np.float32
        np.testing.assert_allclose(got, one_pass(g, x), atol=1e-5, rtol=0)


def test_window_stitching_differs_when_context_exceeds_margin() -> None:
    g = model((1, 2, 4, 8))  # the paper's dilations: 32 frames of context > 5-frame margin
    x = mfcc(1000)
    assert np.abs(predict_long(g, x, progress=False) - one_pass(g, x)).max() > 1e-4
    # a margin that covers the context brings equality back: overlap 8*33 audio frames in 400-frame windows
    got = predict_long(g, x, window_audio_frames=400, overlap_audio_frames=8 * 33, progress=False)
    np.testing.assert_allclose(got, one_pass(g, x), atol=1e-5, rtol=0)


def test_iter_predict_is_batched_and_restores_mode() -> None:
    g = model()
    g.train()
    x = mfcc(4000)
    pieces = list(iter_predict(g, x, batch_windows=2, progress=False))
    n_windows = len(plan_windows(4000))
    assert len(pieces) == -(-n_windows // 2) and max(len(p) for p in pieces) <= 2 * 50
    np.testing.assert_allclose(np.concatenate(pieces), predict_long(g.eval(), x, progress=False), atol=1e-6)
    g.train()
    predict_long(g, x[:400], progress=False)
    assert g.training


@pytest.mark.parametrize("arch", ["lstm", "bilstm", "tcn_gan"])
def test_other_archs_run_windowed(arch: str) -> None:
    g = build_generator(MouthModelConfig(arch=arch, channels=8, fc_hidden=8, lstm_hidden=8, dilations=(1,)))
    assert predict_long(g, mfcc(1028), progress=False).shape == (257, 10)


def test_bad_inputs() -> None:
    g = model()
    with pytest.raises(InputError, match="multiple of 4"):
        predict_long(g, mfcc(201), progress=False)
    with pytest.raises(InputError, match=r"\(T,13\)"):
        predict_long(g, np.zeros((200, 12), np.float32), progress=False)
    with pytest.raises(InputError, match="overlap_audio_frames"):
        predict_long(g, mfcc(400), overlap_audio_frames=36, progress=False)
    s = StreamingMouthPredictor(g)
    s.push(mfcc(10))
    with pytest.raises(InputError, match="multiple of 4"):
        s.flush()


@pytest.mark.parametrize("t", LENGTHS)
def test_streaming_equals_predict_long(t: int) -> None:
    g = model((1, 2, 4, 8))  # equality holds for any context: same windows, same cuts
    x = mfcc(t, seed=1)
    ref = predict_long(g, x, progress=False)
    s = StreamingMouthPredictor(g)
    rng = np.random.default_rng(t)
    out, i = [], 0
    while i < t:
        n = int(rng.integers(1, 90))
        out.append(s.push(x[i : i + n]))
        i += n
    out.append(s.flush())
    np.testing.assert_allclose(np.concatenate(out), ref, atol=1e-6, rtol=0)
    # flush reset the predictor: a second stream gives the same frames
    again = np.concatenate([s.push(x), s.flush()])
    np.testing.assert_allclose(again, ref, atol=1e-6, rtol=0)


def test_streaming_latency_is_bounded_and_reported() -> None:
    g = model()
    s = StreamingMouthPredictor(g)
    assert (s.latency_ms, s.steady_latency_ms) == (2000.0, 1800.0)
    x = mfcc(1160)  # = 200 + 6 hops: the last regular window ends with the audio
    lags, emitted = [], 0
    for t in range(1, 1161):  # one 10 ms frame at a time
        new = s.push(x[t - 1 : t])
        for f in range(emitted, emitted + len(new)):
            lags.append((t - 4 * f) * 10.0)  # audio time from the frame's start to its emission
        emitted += len(new)
    assert emitted == 1160 // 4 - 5  # all but the last margin before the stream ends
    assert max(lags) == s.latency_ms
    assert max(lags[50:]) == s.steady_latency_ms  # after the first window
    assert len(s.flush()) == 5
