"""Tiny stage 1 models learn a synthetic audio -> mouth mapping; one GAN step (D then G) runs."""

from __future__ import annotations

import pytest
import torch

from a2v.recipes.lipsync.mouth_loss import discriminator_loss, total_generator_loss
from a2v.recipes.lipsync.mouth_model import MouthModelConfig, build_discriminator, build_generator


def synthetic_batch(b: int = 4, t: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """mfcc (B,T,13) smooth random; mouth (B,T/4,10) = fixed linear map of each frame's 4-frame mean."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t + 4, 13, generator=g)
    x = (
        (x[:, :-4] + x[:, 1:-3] + x[:, 2:-2] + x[:, 3:-1] + x[:, 4:]) / 5 * 2
    )  # (B,T+4,13)->(B,T,13), smoothed
    a = torch.randn(13, 10, generator=g) / 13**0.5
    y = x.reshape(b, t // 4, 4, 13).mean(2) @ a  # (B,T,13)->(B,F,13)->(B,F,10)
    return x, y / y.std()


def cfg(arch: str) -> MouthModelConfig:
    return MouthModelConfig(
        arch=arch,
        channels=32,
        fc_hidden=32,
        dilations=(1, 2),
        disc_channels=16,
        disc_dilations=(1, 2),
        lstm_hidden=32,
        time_delay_frames=4,
        inter_weight=0.5,
    )


@pytest.mark.parametrize("arch", ["tcn", "lstm", "bilstm"])
def test_tiny_generator_overfits(arch: str) -> None:
    torch.manual_seed(0)
    x, y = synthetic_batch()
    g = build_generator(cfg(arch))
    opt = torch.optim.Adam(g.parameters(), lr=1e-2 if "lstm" in arch else 3e-3)
    first = None
    for _ in range(250):
        out = total_generator_loss(g(x), y, inter_weight=0.5)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["reg"].item()
    final = torch.nn.functional.mse_loss(g(x), y).item()
    assert final < 0.05 * y.var().item(), (first, final)
    assert final < 0.05 * first


def test_gan_step_d_then_g() -> None:
    torch.manual_seed(0)
    c = cfg("tcn_gan")
    x, y = synthetic_batch()
    g, d = build_generator(c), build_discriminator(c)
    assert d is not None
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g_before = [p.detach().clone() for p in g.parameters()]
    for _ in range(3):
        fake = g(x)
        # D step on a detached fake
        loss_d = discriminator_loss(d(x, y), d(x, fake.detach()), c.gan_loss)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # G step through the updated D; D gets no update here
        d_snapshot = [q.detach().clone() for q in d.parameters()]
        out = total_generator_loss(
            fake,
            y,
            d(x, fake),
            reg_weight=c.reg_weight,
            inter_weight=c.inter_weight,
            adv_weight=c.adv_weight,
            gan_loss=c.gan_loss,
        )
        opt_g.zero_grad()
        out["loss"].backward()
        opt_g.step()
        assert all(torch.equal(a, b) for a, b in zip(d_snapshot, d.parameters(), strict=True))
        assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in g.parameters())
        assert torch.isfinite(loss_d) and all(torch.isfinite(v) for v in out.values())
        assert out["adv"].item() > 0
    assert any(not torch.equal(a, b) for a, b in zip(g_before, g.parameters(), strict=True))
