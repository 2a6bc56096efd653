"""VQGAN latent optimisation, VQ loading (diffusers folder, taming layout), image towers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from image_testutil import TAMING_YAML, _to_taming, tiny_taming_reference

from a2v.errors import MissingWeightsError
from a2v.recipes.image.config import GenerateConfig, TowerConfig, VQConfig
from a2v.recipes.image.generate.vqgan import (
    build_vq,
    convert_taming_state_dict,
    cutouts,
    decode,
    load_taming_vqgan,
    optimise_latents,
    spherical_distance,
)
from a2v.recipes.image.towers import build_tower


@pytest.fixture(scope="module")
def tower(clip_vision_dir):
    return build_tower(TowerConfig(kind="hf_clip", name=str(clip_vision_dir)))


def test_hf_clip_vision_tower_embeds_with_gradients(tower, tmp_path):
    assert (tower.embed_dim, tower.image_size_px, tower.has_text) == (32, 32, False)  # pooled output, no projection
    x = torch.rand(2, 3, 48, 40, requires_grad=True)  # any size: resized inside
    emb = tower.encode_image(x)  # (2,3,48,40)->(2,32)
    assert emb.shape == (2, 32) and tower.cache_id.startswith("hf_clip:")
    (emb * torch.randn(2, 32)).sum().backward()  # (a plain sum of a LayerNorm output has zero gradient)
    assert x.grad is not None and x.grad.abs().sum() > 0  # generation back-propagates through the tower
    assert not any(p.requires_grad for p in tower.parameters())
    with pytest.raises(MissingWeightsError, match="no_clip_here"):
        build_tower(TowerConfig(kind="hf_clip", name=str(tmp_path / "no_clip_here")))


def test_spherical_distance_closed_form_and_cutouts():
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert spherical_distance(x, y).item() == pytest.approx(2 * (np.pi / 4) ** 2)  # 90 degrees: 2 (theta/2)^2
    assert spherical_distance(x, 2 * x).item() == pytest.approx(0.0, abs=1e-6)
    pic = torch.rand(1, 3, 40, 48)
    c = cutouts(pic, 5, 16, 1.0, 0.0, False, torch.Generator().manual_seed(0))
    assert c.shape == (5, 3, 16, 16) and 0 <= c.min() and c.max() <= 1


def test_latent_optimisation_lowers_loss_and_returns_a_picture(tower, vq_dir):
    vq = build_vq(VQConfig(kind="diffusers", path=str(vq_dir)))
    target = torch.randn(32, generator=torch.Generator().manual_seed(3))
    cfg = GenerateConfig(size_px=(32, 32), steps=12, lr=0.1, num_cutouts=4, noise_std=0.0, flip=False, video_every=5)
    frames = []
    picture, losses = optimise_latents(vq, tower, target, cfg, progress=False, on_frame=lambda i, f: frames.append(i))
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    assert frames == [0, 5, 10, 12]
    with torch.no_grad():  # the picture itself moved toward the target (no cutouts)
        z = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 255
        start = decode(vq, vq.quantize.embedding.weight[torch.randint(64, (64,),
                       generator=torch.Generator().manual_seed(cfg.seed))].T.reshape(1, -1, 8, 8))
        d_end = spherical_distance(tower.encode_image(z), target[None]).item()
        d_start = spherical_distance(tower.encode_image(start), target[None]).item()
    assert d_end < d_start
    init = torch.rand(3, 32, 32)
    pic2, _ = optimise_latents(vq, tower, target, GenerateConfig(size_px=(32, 32), steps=2, num_cutouts=2,
                                                                 init_weight=1.0), init_image=init, progress=False)
    assert pic2.shape == (32, 32, 3)


def test_missing_vq_weights_name_the_file(tmp_path, vq_dir):
    with pytest.raises(MissingWeightsError, match="absent.ckpt"):
        build_vq(VQConfig(kind="taming", ckpt=str(tmp_path / "absent.ckpt"), yaml=str(tmp_path / "absent.yaml")))
    with pytest.raises(MissingWeightsError, match="config.json"):
        build_vq(VQConfig(kind="diffusers", path=str(tmp_path / "novq")))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((vq_dir / "config.json").read_text())
    with pytest.raises(MissingWeightsError, match="weight"):
        build_vq(VQConfig(kind="diffusers", path=str(bare)))


def test_taming_layout_converts_to_the_same_decoder(tmp_path):
    yaml = tmp_path / "vqgan.yaml"
    yaml.write_text(TAMING_YAML)
    ref = tiny_taming_reference()
    taming = _to_taming(ref.state_dict(), 2)
    assert "encoder.down.1.attn.0.q.weight" in taming and "decoder.up.1.attn.0.proj_out.weight" in taming
    taming["loss.discriminator.main.0.weight"] = torch.zeros(1)  # training-only weights are ignored
    from safetensors.torch import save_file

    save_file(taming, str(tmp_path / "vqgan.safetensors"))
    vq = load_taming_vqgan(tmp_path / "vqgan.safetensors", yaml)
    assert set(convert_taming_state_dict(taming, dict(vq.config))) == set(ref.state_dict())
    z = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(vq.decode(z).sample, ref.decode(z).sample)
        x = torch.rand(1, 3, 32, 32)
        torch.testing.assert_close(vq.encode(x).latents, ref.encode(x).latents)
