"""Fixtures of the talk recipe tests: tiny config, a built-in generator and clips it made."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from talk_testutil import REPO, make_clips, save_tiny_wav2vec2


@pytest.fixture(scope="session")
def wav2vec2_dir(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("talk_w2v") / "w2v")


@pytest.fixture(scope="session")
def tiny_cfg(wav2vec2_dir):
    from a2v.config import load_config
    from a2v.recipes.talk.config import TalkConfig

    return load_config(TalkConfig, REPO / "configs" / "talk" / "tiny.yaml", [f"audio.encoder={wav2vec2_dir}"])


@pytest.fixture(scope="session")
def tiny_generator(tiny_cfg):
    from a2v.gan.stylegan import SmallStyleGenerator

    torch.manual_seed(0)
    return SmallStyleGenerator(tiny_cfg.generator.builtin).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_clips(tiny_generator):
    return make_clips(tiny_generator)
