"""``a2v models tiny``: offline random HF folders that the encoders load with from_pretrained(path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm", "hubert"])
def test_tiny_speech_folder_loads_in_the_speech_encoder(tmp_path, kind):
    from a2v.encoders.speech import SpeechEncoder
    from a2v.tiny_models import write_tiny_model

    folder = write_tiny_model(kind, tmp_path / kind)
    enc = SpeechEncoder.from_pretrained(str(folder))
    with torch.no_grad():
        feats = enc(np.zeros(16000, np.float32))
    assert feats.shape[-1] == 32 and 45 <= feats.shape[-2] <= 50  # 1 s at 20 ms per frame


def test_tiny_bert_tokenizes_any_lowercase_text(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from a2v.tiny_models import write_tiny_model

    folder = write_tiny_model("bert", tmp_path / "bert")
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("Set white with p two soon.")["input_ids"]
    assert tok.unk_token_id not in ids and len(ids) > 10
    out = AutoModel.from_pretrained(folder)(**tok("hello", return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 32


def test_cli_writes_once_and_refuses_an_existing_folder(tmp_path, capsys):
    from a2v.cli import main

    out = tmp_path / "w"
    assert main(["models", "tiny", "--kind", "wavlm", "-o", str(out)]) == 0
    assert (out / "config.json").is_file() and (out / "preprocessor_config.json").is_file()
    assert main(["models", "tiny", "--kind", "wavlm", "-o", str(out)]) == 2
    assert main(["models", "tiny", "--kind", "gpt", "-o", str(tmp_path / "g")]) == 2
    assert not (tmp_path / "g").exists() and not list(tmp_path.glob(".g.*"))
    assert "exists" in capsys.readouterr().err


def test_tiny_whisper_has_language_tokens_and_loads_back(tmp_path):
    from transformers import AutoProcessor, WhisperForConditionalGeneration

    from a2v.tiny_models import whisper_language_tokens, write_tiny_model

    folder = write_tiny_model("whisper", tmp_path / "whisper")
    model = WhisperForConditionalGeneration.from_pretrained(folder)
    langs = model.generation_config.lang_to_id
    assert {"<|en|>", "<|zh|>", "<|es|>", "<|de|>", "<|yue|>"} <= set(langs) and len(langs) == 100
    assert sorted(langs, key=langs.get) == whisper_language_tokens() and len(set(langs.values())) == len(langs)
    proc = AutoProcessor.from_pretrained(folder)
    assert proc.tokenizer.convert_tokens_to_ids("<|zh|>") == langs["<|zh|>"]
    feats = proc.feature_extractor(np.zeros(16000, np.float32), sampling_rate=16000, return_tensors="pt")
    assert feats.input_features.shape == (1, 80, 3000)  # 30 s window of 10 ms log-mel frames
    with torch.no_grad():
        logits = model(input_features=feats.input_features, decoder_input_ids=torch.tensor([[50]])).logits
    assert logits.shape == (1, 1, model.config.vocab_size)


def test_pinned_tiny_whisper_answers_its_language_whatever_the_audio(tmp_path):
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    from a2v.tiny_models import write_tiny_model

    folder = write_tiny_model("whisper", tmp_path / "zh", language="zh")
    model = WhisperForConditionalGeneration.from_pretrained(folder)
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    rng = np.random.default_rng(0)
    for wav in (np.zeros(16000, np.float32), 0.3 * rng.standard_normal(48000).astype(np.float32)):
        feats = fe(wav, sampling_rate=16000, return_tensors="pt").input_features  # (1,80,3000)
        ids = model.detect_language(feats)  # transformers' arg-max over the language tokens
        assert ids.tolist() == [model.generation_config.lang_to_id["<|zh|>"]]


def test_cli_whisper_language_option_is_checked(tmp_path, capsys):
    from a2v.cli import main

    assert main(["models", "tiny", "--kind", "whisper", "--language", "xx", "-o", str(tmp_path / "a")]) == 2
    assert "not a Whisper language code" in capsys.readouterr().err
    assert main(["models", "tiny", "--kind", "bert", "--language", "zh", "-o", str(tmp_path / "b")]) == 2
    assert "does not apply to --kind bert" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
