"""Tiny pretrained folders for the image recipe (WavLM, CLIP vision tower, VQModel) and a synthetic paired set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def wavlm_dir(tmp_path_factory) -> Path:
    """A tiny random WavLM (hidden 32, 2 layers) saved with save_pretrained."""
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, WavLMConfig

    root = tmp_path_factory.mktemp("image_wavlm") / "wavlm"
    cfg = WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(root)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def clip_vision_dir(tmp_path_factory) -> Path:
    """A tiny random CLIPVisionModel (hidden 32, 32x32 input, patch 8) saved with save_pretrained."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    root = tmp_path_factory.mktemp("image_clip") / "clip"
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, projection_dim=16)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def vq_dir(tmp_path_factory) -> Path:
    """The tiny random VQModel of the recipe saved with save_pretrained."""
    from a2v.recipes.image.generate.vqgan import tiny_vq

    root = tmp_path_factory.mktemp("image_vq") / "vq"
    tiny_vq(0).save_pretrained(root)
    return root
