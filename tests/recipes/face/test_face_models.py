"""Face recipe models: voice encoder shapes/loss, LAMB vs the paper's rule, Table-1 U-Net structure."""

from __future__ import annotations

import pytest
import torch

from a2v.recipes.face.config import DecoderConfig, FaceConfig, SuperResConfig, VoiceEncoderConfig
from a2v.recipes.face.decoder import FaceDecoder, unet_kwargs
from a2v.recipes.face.lamb import Lamb
from a2v.recipes.face.superres import SuperResUNet
from a2v.recipes.face.superres import unet_kwargs as sr_kwargs
from a2v.recipes.face.voice_encoder import VoiceEncoder, cosine_distance_loss, lr_lambda


def test_voice_encoder_tiny_shapes_and_loss(tiny_cfg):
    enc = VoiceEncoder(tiny_cfg.voice, tiny_cfg.embedding.dim)
    spec = torch.randn(3, 2, 98, 257)  # 1 s at 100 Hz
    out = enc(spec)
    assert out.shape == (3, 128)
    target = torch.randn(3, 128)
    assert cosine_distance_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distance_loss(-target, target).item() == pytest.approx(2.0, abs=1e-6)
    cosine_distance_loss(out, target).backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_voice_encoder_paper_structure_on_meta():
    with torch.device("meta"):
        enc = VoiceEncoder(VoiceEncoderConfig(), 512)
    assert enc.fc_in == 512 * 64  # 257 freq bins -> 128 -> 64 after the two stride-2 convs
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 128, 256, 512, 512, 512]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in enc.convs) == 4
    assert enc.fc[1].out_features == 4096


def test_lamb_matches_algorithm_2():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3))
    zero = torch.nn.Parameter(torch.zeros(4))
    opt = Lamb([p, zero], lr=0.1, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.01)
    x, m, v = p.detach().double().clone(), torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64)
    for t in (1, 2, 3):
        g = torch.randn(5, 3)
        p.grad, zero.grad = g.clone(), torch.ones(4)
        opt.step()
        g = g.double()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        r = (m / (1 - 0.9**t)) / ((v / (1 - 0.99**t)).sqrt() + 1e-6)
        u = r + 0.01 * x
        x = x - 0.1 * (x.norm() / u.norm()) * u
        assert torch.allclose(p.detach().double(), x, atol=1e-5)
    assert torch.all(zero.detach() != 0)  # zero weights: trust ratio 1, plain Adam-like step
    assert lr_lambda(0.95, 10_000)(9_999) == 1.0 and lr_lambda(0.95, 10_000)(25_000) == pytest.approx(0.95**2)


def test_decoder_table1_block_structure_on_meta():
    kw = unet_kwargs(DecoderConfig(), 512)
    assert kw["block_out_channels"] == (256, 512, 768, 1024)
    assert kw["layers_per_block"] == (3, 3, 3, 3)
    assert kw["down_block_types"] == ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3  # attention at 32, 16, 8
    with torch.device("meta"):
        net = FaceDecoder(DecoderConfig(), 512)
    assert [len(b.resnets) for b in net.unet.down_blocks] == [3, 3, 3, 3]
    attn = [m for n, m in net.named_modules() if type(m).__name__ == "Attention"]
    assert attn and all(a.heads == 4 for a in attn)
    assert {a.inner_dim for a in attn} == {512, 768, 1024}  # levels 32, 16, 8 px (and the middle)
    cross = [m for n, m in net.named_modules() if n.endswith("attn2")]
    assert all(c.to_k.in_features == 512 for c in cross)  # cross-attention to the 512-d embedding
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert {g.num_groups for g in norms} == {32}
    n_params = sum(p.numel() for p in net.parameters())
    assert 5e8 < n_params < 9e8  # diffusers transformer blocks (with feed-forward) at 256 base channels


def test_superres_table1_block_structure_on_meta():
    kw = sr_kwargs(SuperResConfig(), 512)
    assert kw["sample_size"] == 512
    assert kw["block_out_channels"] == (64, 128, 256, 512, 1024)
    assert kw["layers_per_block"] == (1, 1, 2, 4, 8)
    assert kw["down_block_types"] == ("DownBlock2D",) * 4 + ("CrossAttnDownBlock2D",)  # 512 -> 32 px
    with torch.device("meta"):
        net = SuperResUNet(SuperResConfig(), 512)
    assert {g.num_groups for g in net.modules() if isinstance(g, torch.nn.GroupNorm)} == {16}
    assert len(net.unet.down_blocks[4].resnets) == 8 and len(net.unet.down_blocks[2].resnets) == 2


def test_tiny_superres_forward(tiny_cfg):
    net = SuperResUNet(tiny_cfg.superres, 128)
    x = torch.randn(2, 3, 32, 32)
    emb, cond = torch.randn(2, 128), torch.randn(2, 3, 32, 32)
    out = net(x, torch.tensor([3, 50]), cond, torch.tensor([0, 10]), emb)
    assert out.shape == (2, 3, 32, 32)
    other = net(x, torch.tensor([3, 50]), cond, torch.tensor([0, 10]), -emb)
    assert not torch.allclose(out, other)  # the embedding reaches the output


def test_config_checks_dimensions():
    from a2v.errors import ConfigError

    with pytest.raises(ConfigError, match="embedding.dim=128"):
        FaceConfig(embedding=FaceConfig().embedding.__class__(kind="dlib", dim=512))
    with pytest.raises(ConfigError, match="low_res_px"):
        FaceConfig(superres=SuperResConfig(low_res_px=32))
