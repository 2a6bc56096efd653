"""The open_clip image tower: a tiny ViT built from a model config, saved, loaded through build_tower."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from a2v.errors import ConfigError, MissingWeightsError
from a2v.recipes.image.config import TowerConfig
from a2v.recipes.image.towers import OpenCLIPTower, build_tower

open_clip = pytest.importorskip("open_clip")

TINY = {  # a 32x32 ViT (patch 8, 1 layer) and a 1-layer text transformer, 16-d joint space
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
NAME = "a2v-test-tiny-vit"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> tuple[Path, Path, torch.nn.Module]:
    """(model-config json, checkpoint file, the reference open_clip model with those weights)."""
    root = tmp_path_factory.mktemp("open_clip")
    cfg_file = root / f"{NAME}.json"
    cfg_file.write_text(json.dumps(TINY))
    open_clip.add_model_config(cfg_file)
    torch.manual_seed(0)
    model = open_clip.create_model(NAME, device="cpu").eval()
    ckpt = root / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), ckpt)
    return cfg_file, ckpt, model


def test_open_clip_tower_matches_open_clip_and_back_propagates(tiny_clip):
    cfg_file, ckpt, ref = tiny_clip
    tower = build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(ckpt)))
    assert isinstance(tower, OpenCLIPTower)
    assert (tower.embed_dim, tower.image_size_px, tower.has_text) == (16, 32, True)
    # numerics: open_clip's own preprocessing + encode_image on the same 32x32 picture
    _, _, preprocess = open_clip.create_model_and_transforms(NAME, pretrained=str(ckpt), device="cpu")
    from PIL import Image

    pic = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        want = ref.encode_image(preprocess(Image.fromarray(pic))[None])  # (1,3,32,32)->(1,16)
        got = tower.encode_image(torch.from_numpy(pic).permute(2, 0, 1)[None].float() / 255)  # (1,3,32,32)->(1,16)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # any size in, gradients reach the picture, the tower stays frozen
    x = torch.rand(2, 3, 40, 48, requires_grad=True)
    emb = tower.encode_image(x)  # (2,3,40,48)->(2,16)
    assert emb.shape == (2, 16)
    (emb * torch.randn(2, 16)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in tower.parameters())
    # text side (zero-shot): same as open_clip's tokenizer + encode_text
    texts = ["the sound of a dog", "the sound of rain"]
    with torch.no_grad():
        want_t = ref.encode_text(open_clip.get_tokenizer(NAME)(texts))
    torch.testing.assert_close(tower.encode_text(texts), want_t)
    assert tower.encode_text(texts).shape == (2, 16)


def test_open_clip_tower_cache_id_config_path_and_errors(tiny_clip, tmp_path):
    cfg_file, ckpt, _ = tiny_clip
    a = build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(ckpt)))
    b = build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(ckpt)))
    assert a.cache_id == b.cache_id and a.cache_id.startswith(f"open_clip:{NAME}@")
    other = tmp_path / "other.bin"  # other weights, other cache id
    sd = {k: v + 1 if v.is_floating_point() else v for k, v in torch.load(ckpt, weights_only=True).items()}
    torch.save(sd, other)
    assert build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(other))).cache_id != a.cache_id
    # name = the model-config json itself
    c = build_tower(TowerConfig(kind="open_clip", name=str(cfg_file), weights=str(ckpt)))
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(c.encode_image(x), a.encode_image(x))
    with pytest.raises(MissingWeightsError, match="no_weights_here.bin"):
        build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(tmp_path / "no_weights_here.bin")))
    with pytest.raises(MissingWeightsError, match="not found: ''"):
        build_tower(TowerConfig(kind="open_clip", name=NAME, weights=""))
    with pytest.raises(ConfigError, match="unknown open_clip architecture 'No-Such-ViT'"):
        build_tower(TowerConfig(kind="open_clip", name="No-Such-ViT", weights=str(ckpt)))
    bad = tmp_path / "bad.bin"  # weights of another architecture
    torch.save({"visual.conv1.weight": torch.zeros(3)}, bad)
    with pytest.raises(ConfigError, match=NAME):
        build_tower(TowerConfig(kind="open_clip", name=NAME, weights=str(bad)))


def test_open_clip_tower_from_a_local_folder(tiny_clip, tmp_path):
    _, ckpt, ref = tiny_clip
    folder = tmp_path / "tiny_open_clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    with pytest.raises(MissingWeightsError, match="has no weights file"):  # open_clip would keep random weights
        build_tower(TowerConfig(kind="open_clip", name=str(folder)))
    shutil.copy(ckpt, folder / "open_clip_pytorch_model.bin")
    x = torch.rand(2, 3, 32, 32)
    for name in (str(folder), f"local-dir:{folder}"):
        tower = build_tower(TowerConfig(kind="open_clip", name=name))
        with torch.no_grad():
            torch.testing.assert_close(tower.encode_image(x), ref.encode_image((x - tower.mean) / tower.std))
        assert tower.encode_text(["a dog"]).shape == (1, 16)
    with pytest.raises(ConfigError, match="tower.weights is not used"):
        build_tower(TowerConfig(kind="open_clip", name=str(folder), weights=str(ckpt)))
    with pytest.raises(MissingWeightsError, match="open_clip_config.json"):
        build_tower(TowerConfig(kind="open_clip", name=str(tmp_path)))
