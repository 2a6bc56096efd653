"""Cost of ``TonguePipeline.generate`` grows linearly with the utterance: per cascade stage, one sampler run
of 2N - 1 network evaluations per window, each on one window (never the whole sequence), one condition
encoding and at most one transcription per utterance. Calls are counted, nothing is timed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from a2v.config import load_config
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.model import ConditionEncoder, build_denoiser
from a2v.recipes.tongue.pipeline import TonguePipeline
from a2v.recipes.tongue.sample import window_starts

TINY = "configs/tongue/tiny.yaml"


def _pipeline(sets: list[str]) -> tuple[TonguePipeline, list[tuple[int, int]]]:
    """The tiny cascade (random weights) whose stage networks log (stage, frames) of every evaluation."""
    cfg = load_config(TongueConfig, TINY, sets)
    enc = ConditionEncoder.from_config(cfg.cond)
    torch.manual_seed(0)
    stages = [build_denoiser(cfg, enc.audio_dim, enc.text_dim, s) for s in range(cfg.num_stages)]
    log: list[tuple[int, int]] = []
    for i, st in enumerate(stages):
        fwd = st.net.forward

        def counted(x, *a, _i=i, _f=fwd, **k):
            log.append((_i, x.shape[2]))  # (stage, frames of this evaluation)
            return _f(x, *a, **k)

        st.net.forward = counted
    return TonguePipeline(cfg, stages, enc), log


@pytest.mark.parametrize("sampler", ["heun", "heun_sde"])
def test_network_evaluations_are_linear_in_the_number_of_windows(sampler: str) -> None:
    steps = 2
    pipe, log = _pipeline([f"sampler.name={sampler}", f"sampler.steps={steps}"])
    clip, overlap = pipe.cfg.data.clip_frames, pipe.cfg.sampler.overlap_frames
    nfe = 2 * steps - 1  # EDM Alg. 1/2: no correction on the last step to sigma = 0
    wav = np.zeros(16000, dtype=np.float32)  # (S,) 1 s; the frame count is set below
    per_window = []
    for n_frames in (clip, 3 * clip, 9 * clip):  # 1, 4 and 12 windows (tiny: 8 frames, 2 carried)
        log.clear()
        video = pipe.generate(wav, n_frames=n_frames, progress=False)
        assert video.shape[0] == n_frames
        n_win = math.ceil((n_frames - overlap) / (clip - overlap))  # windows of `clip` frames, hop clip - overlap
        assert n_win == len(window_starts(n_frames, clip, overlap))
        for s in range(pipe.cfg.num_stages):
            frames = [f for st, f in log if st == s]
            assert len(frames) == n_win * nfe, (n_frames, s)  # one sampler run per window, per stage
            assert max(frames) <= clip  # a window at a time, never the whole sequence
        per_window.append(len(log) / n_win)
    assert per_window == [nfe * pipe.cfg.num_stages] * 3


def test_guidance_costs_two_evaluations_per_step_whatever_the_length() -> None:
    pipe, log = _pipeline(["sampler.steps=2", "sampler.guidance_scale=2.0"])
    clip = pipe.cfg.data.clip_frames
    n_frames = 5 * clip
    pipe.generate(np.zeros(16000, dtype=np.float32), n_frames=n_frames, progress=False)
    n_win = len(window_starts(n_frames, clip, pipe.cfg.sampler.overlap_frames))
    assert len(log) == pipe.cfg.num_stages * n_win * 2 * (2 * 2 - 1)  # conditional + null per evaluation


def test_condition_and_transcript_are_computed_once_per_utterance(monkeypatch, tiny_bert) -> None:
    """An A+T model given no transcript recognises the speech once (not per window); audio is encoded once."""
    pipe, log = _pipeline(["sampler.steps=2", "cond.use_text=true", f"cond.text_encoder={tiny_bert}"])
    calls = {"audio": 0, "transcript": 0}
    enc_audio = pipe.encoder.encode_audio

    def audio(*a, **k):
        calls["audio"] += 1
        return enc_audio(*a, **k)

    def asr(wav, text, sr=16000):  # stands in for PocketSphinx/Whisper: counted, no recognition run
        calls["transcript"] += 1
        return text or "low high"

    monkeypatch.setattr(pipe.encoder, "encode_audio", audio)
    monkeypatch.setattr(pipe.encoder, "transcript", asr)
    pipe.generate(np.zeros(16000, dtype=np.float32), n_frames=6 * pipe.cfg.data.clip_frames, progress=False)
    assert calls == {"audio": 1, "transcript": 1} and len(log) > 0
