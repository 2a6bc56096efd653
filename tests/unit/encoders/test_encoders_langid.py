"""Spoken-language identification with Whisper: probabilities over the language tokens, input window, errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from a2v.encoders.langid import LanguageId, identify_language, token_code
from a2v.errors import InputError, MissingWeightsError


@pytest.fixture(scope="module")
def whispers(tmp_path_factory) -> dict[str, Path]:
    """Tiny Whisper folders: random, and pinned to zh (P = e^10 / (e^10 + 99))."""
    from a2v.tiny_models import write_tiny_model

    root = tmp_path_factory.mktemp("langid")
    return {"random": write_tiny_model("whisper", root / "random"),
            "zh": write_tiny_model("whisper", root / "zh", language="zh")}


def _noise(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def test_pinned_model_gives_the_closed_form_probability(whispers):
    out = identify_language(_noise(2.0, 8000), 8000, whispers["zh"])
    assert isinstance(out, LanguageId) and out.code == "zh"
    assert out.prob == pytest.approx(math.exp(10) / (math.exp(10) + 99), rel=1e-5)  # 100 language tokens
    assert out.top3[0] == ("zh", out.prob) and len(out.top3) == 3
    assert out.top3[1][1] == pytest.approx((1 - out.prob) / 99, rel=1e-4)


def test_random_model_returns_a_language_of_the_model(whispers):
    langs = json.loads((whispers["random"] / "generation_config.json").read_text())["lang_to_id"]
    codes = {token_code(t) for t in langs}
    out = identify_language(_noise(3.0, 16000), 16000, str(whispers["random"]))
    probs = [p for _, p in out.top3]
    assert out.code in codes and all(c in codes for c, _ in out.top3) and len({c for c, _ in out.top3}) == 3
    assert probs == sorted(probs, reverse=True) and out.prob == probs[0]
    assert 0 < sum(probs) <= 1 + 1e-6 and probs[0] >= 1 / len(langs)  # the arg-max of a distribution over 100


def test_resampled_and_first_30_s_of_speech(whispers, monkeypatch):
    import a2v.encoders.langid as langid

    seen = []
    real = langid._load

    def spy(*args):
        net, fe = real(*args)

        def fe_spy(x, **kw):
            seen.append((x, kw))
            return fe(x, **kw)

        return net, fe_spy

    monkeypatch.setattr(langid, "_load", spy)
    sr = 8000
    wav = np.concatenate([np.zeros(5 * sr, np.float32), _noise(40.0, sr)])  # 5 s silence, then 40 s
    identify_language(wav, sr, whispers["zh"])
    x, kw = seen[0]
    assert kw["sampling_rate"] == 16000 and x.shape == (30 * 16000,)  # 16 kHz, 30 s window
    assert np.abs(x[:400]).max() > 0.01  # leading silence skipped
    identify_language(_noise(1.0, sr), sr, whispers["zh"])
    assert seen[1][0].shape == (16000,)


def test_token_code():
    assert token_code("<|de|>") == "de" and token_code("<|yue|>") == "yue" and token_code("<|jw|>") == "jv"


def test_errors_are_one_line_and_name_the_folder(whispers, tmp_path, offline_hub):
    wav = _noise(1.0, 16000)
    with pytest.raises(InputError, match="non-empty mono"):
        identify_language(np.zeros((2, 100), np.float32), 16000, whispers["zh"])
    with pytest.raises(MissingWeightsError, match="does not exist") as e:
        identify_language(wav, 16000, tmp_path / "nowhere")
    assert "nowhere" in str(e.value) and "\n" not in str(e.value)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(whispers["zh"] / "config.json", bare / "config.json")
    with pytest.raises(MissingWeightsError, match="no weight file"):
        identify_language(wav, 16000, bare)
    english_only = tmp_path / "english-only"
    shutil.copytree(whispers["zh"], english_only)
    gen = json.loads((english_only / "generation_config.json").read_text())
    gen.pop("lang_to_id")
    (english_only / "generation_config.json").write_text(json.dumps(gen))
    with pytest.raises(MissingWeightsError, match=r"no language tokens .*\*\.en"):
        identify_language(wav, 16000, english_only)
    from a2v.tiny_models import write_tiny_model

    with pytest.raises(MissingWeightsError, match="holds a wavlm model, not Whisper"):
        identify_language(wav, 16000, write_tiny_model("wavlm", tmp_path / "wavlm"))
    with pytest.raises(MissingWeightsError, match=r"not found locally .* --langid-model /models/whisper-small$"):
        identify_language(wav, 16000, "openai/whisper-small")
