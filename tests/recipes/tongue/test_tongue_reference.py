"""``a2v tongue generate --reference x.ult``: the speech is cut by the reference's sync offset, so the
generated and the reference video start at the same instant; the printed frame count is the file's."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from a2v.config import load_config
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.data import align_to_reference, load_utterance
from a2v.recipes.tongue.synthetic import make_synthetic_corpus

OFFSET_S = 0.25


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    """An untrained tiny pipeline (log-mel condition, no weights needed), saved to a folder."""
    import torch

    from a2v.recipes.tongue.model import ConditionEncoder, build_denoiser
    from a2v.recipes.tongue.pipeline import TonguePipeline

    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml", ["sampler.steps=2", "sampler.name=euler"])
    enc = ConditionEncoder(cfg.cond)
    torch.manual_seed(0)
    stages = [build_denoiser(cfg, enc.audio_dim, None, s) for s in range(cfg.num_stages)]
    d = tmp_path_factory.mktemp("pipe") / "pipeline"
    TonguePipeline(cfg, stages, enc).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def offset_corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("ref"), 1, seconds=0.5, fps=60.0, offset_s=OFFSET_S)[0]


def test_align_to_reference_cuts_speech_like_the_sync(offset_corpus) -> None:
    from a2v.audio import load_audio
    from a2v.recipes.tongue.config import DataConfig

    cfg = DataConfig()
    wav = load_audio(offset_corpus.with_suffix(".wav"), sr=16000)  # 0.75 s: 0.25 s lead-in + 0.5 s
    cut, frames = align_to_reference(wav, offset_corpus, cfg)
    u = load_utterance(offset_corpus, cfg)  # what the reference shows: synchronised audio and frames
    assert len(wav) - len(cut) == round(OFFSET_S * 16000)
    assert np.array_equal(cut[: len(u.wav)], u.wav) and np.array_equal(frames, u.frames)


def test_generate_with_reference_aligns_and_prints_the_written_count(tiny_pipeline, offset_corpus, tmp_path,
                                                                      monkeypatch) -> None:
    from a2v.recipes.tongue.cli import app
    from a2v.recipes.tongue.pipeline import TonguePipeline
    from a2v.video import read_frames

    seen = {}
    real_generate = TonguePipeline.generate

    def spy(self, audio, *a, **kw):
        seen["audio"] = audio
        return real_generate(self, audio, *a, **kw)

    monkeypatch.setattr(TonguePipeline, "generate", spy)
    out = tmp_path / "side.mp4"
    res = CliRunner().invoke(app, ["generate", "-m", str(tiny_pipeline), "-a", str(offset_corpus.with_suffix(".wav")),
                                   "-o", str(out), "--reference", str(offset_corpus), "--no-progress"])
    assert res.exit_code == 0, res.output
    u = load_utterance(offset_corpus, TongueConfig().data)
    # the generator got the speech from the reference's first frame on (not the 0.25 s lead-in)
    assert np.array_equal(np.asarray(seen["audio"])[: len(u.wav)], u.wav)
    n_file = sum(1 for _ in read_frames(out))
    printed = int(re.search(r"\((\d+) frames at", " ".join(res.output.split())).group(1))
    assert printed == n_file == len(u.frames) == 30


def test_text_given_to_an_audio_only_pipeline_is_reported(tiny_pipeline, offset_corpus, tmp_path) -> None:
    from a2v.recipes.tongue.cli import app

    res = CliRunner().invoke(app, ["generate", "-m", str(tiny_pipeline), "-a", str(offset_corpus.with_suffix(".wav")),
                                   "-o", str(tmp_path / "x.mp4"), "--text", "a sentence", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "audio-only" in res.output and "--text is not used" in " ".join(res.output.split())
