"""Encoder settings: the missing-weights hint names the recipe's real keys; text encoder and ASR follow
the corpus language (English corpora -> English BERT, Mandarin -> bert-base-chinese)."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.config import load_config
from a2v.errors import ConfigError, MissingWeightsError
from a2v.recipes.tongue.config import ConditionConfig, TongueConfig
from a2v.recipes.tongue.data import transcript_language
from a2v.recipes.tongue.model import ConditionEncoder


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hf-cache")


def test_missing_speech_encoder_hint_names_cond_audio_encoder(offline) -> None:
    with pytest.raises(MissingWeightsError) as e:
        ConditionEncoder.from_config(ConditionConfig(audio_encoder="nobody/absent-w2v", use_text=False))
    msg = str(e.value)
    assert "--set cond.audio_encoder=/models/absent-w2v" in msg and "\n" not in msg


def test_missing_text_encoder_hint_names_cond_text_encoder(offline) -> None:
    with pytest.raises(MissingWeightsError) as e:
        ConditionEncoder.from_config(ConditionConfig(audio_features="logmel", text_encoder="nobody/absent-bert"))
    assert "--set cond.text_encoder=/models/absent-bert" in str(e.value)


def test_text_encoder_follows_the_corpus_language() -> None:
    assert transcript_language(["the quick brown fox", "a sentence"]) == "en"
    assert transcript_language(["我们今天去学校", "你好", "ok"]) == "zh"
    assert transcript_language(["", ""]) is None
    paper = load_config(TongueConfig, "configs/tongue/paper.yaml", []).cond
    assert paper.resolved("zh").text_encoder == "bert-base-chinese"  # the paper's Mandarin corpus
    assert paper.resolved("en").text_encoder == "bert-base-uncased"  # UltraSuite / TaL
    assert paper.resolved(None).language == "en"
    assert ConditionConfig(language="zh", text_encoder="/m/bert").resolved("en").text_encoder == "/m/bert"
    assert ConditionConfig(language="zh").resolved("en").language == "zh"  # an explicit language wins


def test_mandarin_without_whisper_is_a_config_error() -> None:
    enc = ConditionEncoder(ConditionConfig(audio_features="logmel", language="zh"))
    with pytest.raises(ConfigError, match="asr_model"):
        enc.transcript(np.zeros(16000, np.float32), None)
    assert enc.transcript(np.zeros(16000, np.float32), "你好") == "你好"


def test_train_cli_settles_language_from_the_prepared_folder(tmp_path, monkeypatch) -> None:
    """`a2v tongue train` picks the text encoder from report.json before loading it."""
    import json

    from typer.testing import CliRunner

    from a2v.recipes.tongue import model
    from a2v.recipes.tongue.cli import app

    (tmp_path / "report.json").write_text(json.dumps({"language": "zh"}))
    seen = {}

    def fake(cls, cfg, device="cpu"):
        seen["cond"] = cfg
        raise MissingWeightsError("stop here")

    monkeypatch.setattr(model.ConditionEncoder, "from_config", classmethod(fake))
    res = CliRunner().invoke(app, ["train", "-d", str(tmp_path), "-o", str(tmp_path / "run"), "-c",
                                   "configs/tongue/paper.yaml", "--no-progress"])
    assert isinstance(res.exception, MissingWeightsError)
    assert seen["cond"].language == "zh" and seen["cond"].text_encoder == "bert-base-chinese"
