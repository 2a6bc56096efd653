"""Tiny pretrained-model folders built from configs (save_pretrained to tmp), and an empty offline hub."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

TINY_SPEECH = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(8,) * 7,  # default kernels (10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2): hop 320
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


def save_speech_model(folder: Path, kind: str, feature_extractor: bool = True, **overrides) -> Path:
    """Write a tiny random wav2vec2/wavlm/hubert model (and preprocessor config) to ``folder``."""
    import torch
    from transformers import AutoModel, HubertConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor, WavLMConfig

    cfg_cls = {"wav2vec2": Wav2Vec2Config, "wavlm": WavLMConfig, "hubert": HubertConfig}[kind]
    cfg = cfg_cls(**{**TINY_SPEECH, **overrides})
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(folder)
    if feature_extractor:
        layer_norm = cfg.feat_extract_norm == "layer"
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=layer_norm).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def make_speech_model():
    """The function :func:`save_speech_model` (folder, kind, feature_extractor=True, **config overrides)."""
    return save_speech_model


@pytest.fixture(scope="session")
def speech_dirs(tmp_path_factory) -> dict[str, Path]:
    """{kind: folder} for tiny wav2vec2, WavLM and HuBERT models (group-norm CNN, no attention mask)."""
    root = tmp_path_factory.mktemp("speech")
    return {k: save_speech_model(root / k, k) for k in ("wav2vec2", "wavlm", "hubert")}


@pytest.fixture(scope="session")
def layernorm_speech_dir(tmp_path_factory) -> Path:
    """Tiny wav2vec2 with a layer-norm CNN and an attention mask (like wav2vec2-large-xlsr-53)."""
    return save_speech_model(tmp_path_factory.mktemp("speech_ln") / "w2v_ln", "wav2vec2", feat_extract_norm="layer")


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "good", "morning", "##s", "你", "好", "们"]


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    """Tiny BERT (hidden 32, 2 layers) and a WordPiece tokenizer built from a 13-token vocab file."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("bert") / "tiny-bert"
    root.mkdir(parents=True)
    vocab = root.parent / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as ``vocab``, 4.x as ``vocab_file``
    arg = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    BertTokenizerFast(**{arg: str(vocab)}).save_pretrained(root)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(root)
    return root


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache with HF_HUB_OFFLINE=1; any hub connection attempt fails the test."""
    import a2v.encoders._hub as hub

    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*a, **k):
        raise AssertionError("a hub connection was attempted while offline")

    monkeypatch.setattr(hub, "hub_reachable", no_network)
    return cache


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory) -> Path:
    """Tiny random Whisper (d_model 32, 1+1 layers) with a byte-level tokenizer and timestamp tokens."""
    from a2v.tiny_models import write_tiny_model

    return write_tiny_model("whisper", tmp_path_factory.mktemp("whisper") / "tiny-whisper")
