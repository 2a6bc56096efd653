"""Stage 2 renderer: a tiny pix2pixHD overfits a few facial maps; steps, checkpoints, config, errors."""

from __future__ import annotations

import pytest
import torch
from lipsync_testutil import train_renderer

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.recipes.lipsync.renderer import Renderer, RendererConfig, RendererTask


def tiny_cfg(**kw) -> RendererConfig:
    base = dict(resolution_px=32, ngf=8, ndf=8, n_downsample_global=2, n_blocks_global=1, num_D=2, n_layers_D=2,
                lambda_vgg=0.0, lr=2e-3)
    return RendererConfig(**{**base, **kw})


def toy_pairs(n: int = 4, size: int = 32) -> dict[str, torch.Tensor]:
    """Sparse 'landmark' maps uint8 (N,3,S,S) and frames that are a blurred, channel-flipped copy."""
    g = torch.Generator().manual_seed(0)
    maps = (torch.rand(n, 3, size, size, generator=g) > 0.8).to(torch.uint8) * 255
    frames = (torch.nn.functional.avg_pool2d(maps.float(), 5, 1, 2) * 2).clamp(0, 255).to(torch.uint8).flip(1)
    return {"map": maps, "frame": frames}


def test_config_resolves_local_enhancer_and_checks_sizes() -> None:
    assert RendererConfig(resolution_px=256).local_enhancers == 0
    assert RendererConfig(resolution_px=512).local_enhancers == 1
    assert RendererConfig(resolution_px=512).size_multiple == 32
    with pytest.raises(ConfigError, match="multiple of 16"):
        RendererConfig(resolution_px=100)
    with pytest.raises(ConfigError):
        RendererConfig(gan_loss="wgan")  # type: ignore[arg-type]


def test_tiny_renderer_overfits() -> None:
    torch.manual_seed(0)
    r = Renderer(tiny_cfg())
    batch = toy_pairs()
    l1 = [float(logs["l1"]) for logs in train_renderer(r, batch, 120)]
    assert sum(l1[-10:]) / 10 < 0.5 * l1[0]
    out = r.render(batch["map"])
    assert out.shape == (4, 3, 32, 32)
    assert (out - (batch["frame"].float() / 127.5 - 1)).abs().mean() < 0.5 * l1[0]


def test_generator_step_fills_generator_grads_only() -> None:
    torch.manual_seed(0)
    r = Renderer(tiny_cfg(resolution_px=64, n_local_enhancers=1, n_blocks_local=1, gan_loss="hinge"))
    loss, logs = r.generator_step(toy_pairs(2, 64))
    loss.backward()
    assert all(p.grad is None for p in r.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in r.generator.parameters())
    assert {"g_gan", "g_feat", "g_loss", "l1"} <= set(logs)
    d_loss, _ = r.discriminator_step(toy_pairs(2, 64))
    d_loss.backward()
    assert all(p.grad is not None for p in r.discriminator.parameters())


def test_fit_task_and_checkpoint_round_trip(tmp_path) -> None:
    from a2v.train import TrainConfig, fit

    torch.manual_seed(0)
    r = Renderer(tiny_cfg())
    pairs = toy_pairs()
    data = [{"map": pairs["map"][i], "frame": pairs["frame"][i]} for i in range(4)]
    res = fit(RendererTask(r), data, TrainConfig(max_steps=2, batch_size=2, log_every=1, ckpt_every=0,
                                                 tensorboard=False), tmp_path / "run", progress=False)
    assert res.step == 2
    assert {"d_loss", "g_loss", "g_feat"} <= set(res.train_metrics)
    r.save_pretrained(tmp_path / "renderer")
    back = Renderer.from_pretrained(tmp_path / "renderer")
    assert back.discriminator is None  # inference only
    assert back.cfg == r.cfg
    torch.testing.assert_close(back.render(pairs["map"]), r.render(pairs["map"]))
    trained = Renderer.from_pretrained(tmp_path / "renderer", for_training=True)
    assert trained.discriminator is not None


def test_bad_inputs() -> None:
    r = Renderer(tiny_cfg(), for_training=False)
    with pytest.raises(InputError, match=r"\(B,3,32,32\)"):
        r.render(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"\[-1,1\]"):
        r.render(torch.full((1, 3, 32, 32), 3.0))
    with pytest.raises(InputError, match="no discriminator"):
        r.generator_step(toy_pairs(1))
    with pytest.raises(InputError, match="'frame'"):
        Renderer(tiny_cfg()).generator_step({"map": toy_pairs(1)["map"]})


def test_missing_checkpoint_and_vgg_weights(tmp_path, monkeypatch) -> None:
    with pytest.raises(MissingWeightsError, match="config.json"):
        Renderer.from_pretrained(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        Renderer(tiny_cfg(lambda_vgg=10.0))
    Renderer(tiny_cfg(lambda_vgg=10.0), for_training=False)  # inference never needs VGG
