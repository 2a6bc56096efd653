"""Tiny wav2vec2 / BERT folders (built from configs, saved to tmp) and a synthetic UltraSuite-style corpus."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_w2v(tmp_path_factory) -> Path:
    """Random wav2vec2 (hidden 16, 1 layer, hop 320 = 50 Hz) saved with a feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    root = tmp_path_factory.mktemp("w2v") / "tiny-w2v"
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(root)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Random BERT (hidden 16, 1 layer) with a WordPiece vocabulary of the synthetic transcripts' words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("bert") / "tiny-bert"
    root.mkdir(parents=True)
    vocab = root.parent / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "low", "mid", "high"]) + "\n")
    arg = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    BertTokenizerFast(**{arg: str(vocab)}).save_pretrained(root)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Four 0.4 s synthetic utterances (.ult/.param/.wav/.txt) at 60 fps with a 0.1 s sync offset."""
    from a2v.recipes.tongue.synthetic import make_synthetic_corpus

    root = tmp_path_factory.mktemp("tongue_raw")
    make_synthetic_corpus(root, n_utterances=4, seconds=0.4, fps=60.0, seed=0, offset_s=0.1)
    return root
