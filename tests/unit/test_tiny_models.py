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
