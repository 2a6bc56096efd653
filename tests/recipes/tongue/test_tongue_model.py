"""Condition encoder (tiny wav2vec2 + BERT from tmp folders), denoiser network, DNN baseline, missing weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.config import load_config
from a2v.errors import MissingWeightsError
from a2v.recipes.tongue.cli import _config
from a2v.recipes.tongue.config import ConditionConfig, TongueConfig
from a2v.recipes.tongue.data import Utterance
from a2v.recipes.tongue.model import ConditionEncoder, FrameDNN, build_denoiser, lowres_condition


def test_condition_encoder_ssl_and_text(tiny_w2v, tiny_bert) -> None:
    cfg = ConditionConfig(audio_encoder=str(tiny_w2v), text_encoder=str(tiny_bert))
    enc = ConditionEncoder.from_config(cfg)
    assert enc.audio_dim == 16 and enc.text_dim == 16
    utt = Utterance("u", np.zeros((30, 8, 8), np.uint8), np.random.default_rng(0).normal(0, 0.1, 8000)
                    .astype(np.float32), 60.0, "low mid high")
    audio, text = enc(utt)
    assert audio.shape == (30, 16) and audio.dtype == torch.float32  # 0.5 s at 60 fps
    assert text.shape == (5, 16)  # [CLS] low mid high [SEP]


def test_missing_weights_name_the_model(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hf-home/hub")
    with pytest.raises(MissingWeightsError, match="wav2vec2-large-xlsr-53"):
        ConditionEncoder.from_config(ConditionConfig())
    with pytest.raises(MissingWeightsError, match="bert-base-chinese"):
        ConditionEncoder.from_config(ConditionConfig(audio_features="logmel", language="zh"))
    with pytest.raises(MissingWeightsError, match="bert-base-uncased"):  # English by default
        ConditionEncoder.from_config(ConditionConfig(audio_features="logmel"))


def test_denoiser_stages_and_baseline() -> None:
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml")
    assert _config(None, None).edm.sigma_max == 160.0  # paper preset by default
    d0 = build_denoiser(cfg, 20, None, 0)
    d1 = build_denoiser(cfg, 20, None, 1)
    assert d0.null_cond.shape == (16,) and d0.sigma_data == 0.25
    x = torch.randn(2, 1, 8, 16, 16)
    f_c = d0.net.encode_condition(torch.randn(2, 8, 20))
    assert f_c.shape == (2, 8, 16)
    assert d0(x, torch.ones(2), f_c).shape == x.shape
    x1 = torch.randn(2, 1, 8, 32, 32)
    low = lowres_condition(x1, 16)
    assert low.shape == x1.shape
    assert d1(x1, torch.ones(2), f_c, lowres=low, aug_level=torch.zeros(2)).shape == x1.shape
    with pytest.raises(ValueError, match="lowres"):
        d1(x1, torch.ones(2), f_c)
    dnn = FrameDNN(20, 16, context_frames=2, hidden=(32,)).eval()
    a = torch.randn(2, 8, 20)
    y = dnn(a)
    assert y.shape == (2, 1, 8, 16, 16)
    a2 = a.clone()
    a2[:, 7] += 5.0  # frame 7 is outside frame 0's +-2 context
    torch.testing.assert_close(dnn(a2)[:, :, :5], y[:, :, :5])
    assert (dnn(a2)[:, :, 5:] - y[:, :, 5:]).abs().max() > 0
