"""Landmark sync measure: closed-form pieces, a model that recovers a known audio->lip map, the
offset and its edge flag, the packaged model, and the GRID ranking (own audio first for every clip)."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.metrics.av_sync import (
    AVSyncConfig,
    AVSyncModel,
    av_sync,
    leave_one_out_ranking,
    lip_signals,
    shift_audio,
    sync_curve,
)

SR, FPS = 16000, 25.0


def synthetic_talker(seed: int, n_frames: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts (syllables) and landmarks whose lips open with the burst loudness: ((F,68,2), (S,))."""
    rng = np.random.default_rng(seed)
    spf = int(SR / FPS)
    amp = np.zeros(n_frames)
    t = int(rng.integers(2, 6))
    while t < n_frames - 4:
        d = int(rng.integers(3, 7))
        amp[t : t + d] = rng.uniform(0.3, 1.0)
        t += d + int(rng.integers(1, 5))
    wav = (rng.standard_normal(n_frames * spf) * np.repeat(amp, spf) * 0.3).astype(np.float32)
    gap = np.convolve(amp, [0.25, 0.5, 0.25], mode="same") * 20  # px, smooth opening
    lm = np.zeros((n_frames, 68, 2))
    lm[:, 36:42] = [70, 100]
    lm[:, 42:48] = [130, 100]
    for up, lo, x in ((61, 67, 90), (62, 66, 100), (63, 65, 110)):
        lm[:, up] = [x, 150]
        lm[:, lo, 0] = x
        lm[:, lo, 1] = 150 + gap
    lm[:, 51] = [100, 145]
    lm[:, 57, 0] = 100
    lm[:, 57, 1] = 155 + gap
    return lm, wav


def test_lip_signals_are_standardised_and_keep_nan_rows():
    lm, _ = synthetic_talker(0)
    lm[5] = np.nan
    y = lip_signals(lm)
    assert y.shape == (100, 4) and np.isnan(y[5]).all()
    np.testing.assert_allclose(np.nanmean(y, 0), 0, atol=1e-9)
    np.testing.assert_allclose(np.nanstd(y, 0), 1, atol=1e-6)
    with pytest.raises(InputError):
        lip_signals(np.zeros((3, 20, 2)))


def test_sync_curve_peaks_at_the_true_lag():
    x = np.random.default_rng(0).standard_normal((200, 2))
    observed = np.roll(x, 3, axis=0)  # mouth 3 frames after the sound
    curve = sync_curve(observed, x, 5)
    assert int(np.argmax(curve)) - 5 == 3 and curve.max() > 0.95


def test_fitted_model_tells_own_audio_from_shifted_and_other_audio():
    clips = [synthetic_talker(s) for s in range(4)]
    model = AVSyncModel.fit([(lm, w, SR, FPS) for lm, w in clips[1:]])
    lm, wav = clips[0]
    own = av_sync(lm, wav, SR, FPS, model)
    assert own["av_sync_conf"] > 0.4 and own["av_offset_frames"] == 0 and not own["av_offset_at_edge"]
    for other in (shift_audio(wav, SR, 0.5), clips[1][1]):
        assert av_sync(lm, other, SR, FPS, model)["av_sync_conf"] < own["av_sync_conf"] - 0.2
    late = av_sync(lm, shift_audio(wav, SR, -0.2), SR, FPS, model)  # mouth 5 frames after the sound
    assert late["av_offset_frames"] == 5
    edge = av_sync(lm, shift_audio(wav, SR, -0.6), SR, FPS, model)  # 15 frames: the end of the search
    assert edge["av_offset_frames"] == 15 and edge["av_offset_at_edge"]


def test_model_round_trips_and_missing_file_is_one_line(tmp_path):
    clips = [synthetic_talker(s) for s in range(2)]
    model = AVSyncModel.fit([(lm, w, SR, FPS) for lm, w in clips], AVSyncConfig(context_frames=1))
    back = AVSyncModel.load(model.save(tmp_path / "m.json"))
    assert back.cfg == model.cfg
    np.testing.assert_allclose(back.weight, model.weight)
    with pytest.raises(InputError, match="missing"):
        AVSyncModel.load(tmp_path / "nope.json")


def test_packaged_model_loads():
    m = AVSyncModel.load()
    assert m.weight.shape == (m.mean.size, 4) and m.cfg == AVSyncConfig()


@pytest.mark.slow
@pytest.mark.grid
def test_grid_own_audio_ranks_first_for_every_clip_leave_one_speaker_out(grid_clips):
    pytest.importorskip("dlib")
    from a2v.audio import load_audio
    from a2v.metrics.sync import video_landmarks

    clips = {}
    for p in grid_clips:
        lm, fps = video_landmarks(p, detector="dlib_hog", progress=False)  # (F,68,2)
        clips[p.stem] = (lm, load_audio(p, sr=SR), SR, fps)
    ranking = leave_one_out_ranking(clips)  # distractors: own audio +-0.5 s, the other clips' audio
    losers = {k: (r["best_distractor"], round(r["margin"], 3)) for k, r in ranking.items() if not r["own_ranks_first"]}
    assert not losers, losers
    assert all(abs(r["own"]["av_offset_frames"]) <= 2 for r in ranking.values())
