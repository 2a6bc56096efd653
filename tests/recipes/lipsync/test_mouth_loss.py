"""Stage 1 losses against closed forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from a2v.recipes.lipsync.mouth_loss import (
    discriminator_loss,
    generator_adversarial_loss,
    inter_frame_loss,
    regression_loss,
    total_generator_loss,
)


def test_regression_and_inter_frame_closed_form() -> None:
    y = torch.randn(2, 7, 10)
    # a constant offset costs regression c^2 but nothing between frames
    assert regression_loss(y + 0.5, y).item() == pytest.approx(0.25)
    assert inter_frame_loss(y + 0.5, y).item() == pytest.approx(0.0, abs=1e-12)
    # a ramp p = y + a*f: every consecutive difference is off by a
    ramp = torch.arange(7, dtype=torch.float32).view(1, 7, 1) * 0.3
    assert inter_frame_loss(y + ramp, y).item() == pytest.approx(0.09, rel=1e-5)
    p = torch.randn(2, 7, 10)
    ref = ((p.diff(dim=1) - y.diff(dim=1)) ** 2).mean()
    assert inter_frame_loss(p, y).item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValueError, match="2 frames"):
        inter_frame_loss(p[:, :1], y[:, :1])


def test_gan_losses_closed_form() -> None:
    real, fake = torch.tensor([[1.0], [0.5]]), torch.tensor([[0.0], [2.0]])
    # LSGAN (Mao et al. 2017): D = 1/2 E(D(x)-1)^2 + 1/2 E D(G)^2 ; G = 1/2 E(D(G)-1)^2
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5 * (0.125 + 2.0))
    assert generator_adversarial_loss(fake, "lsgan").item() == pytest.approx(0.5 * 1.0)
    bce_d = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert discriminator_loss(real, fake, "bce").item() == pytest.approx(bce_d.item(), rel=1e-6)
    assert generator_adversarial_loss(fake, "bce").item() == pytest.approx(
        -torch.log(torch.sigmoid(fake)).mean().item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="lsgan or bce"):
        generator_adversarial_loss(fake, "hinge")  # type: ignore[arg-type]


def test_total_generator_loss_weights() -> None:
    torch.manual_seed(0)
    p, y, logits = torch.randn(2, 5, 10, requires_grad=True), torch.randn(2, 5, 10), torch.randn(2, 1)
    out = total_generator_loss(p, y, logits, reg_weight=2.0, inter_weight=0.5, adv_weight=0.1, gan_loss="bce")
    expect = (
        2.0 * F.mse_loss(p, y)
        + 0.5 * inter_frame_loss(p, y)
        + 0.1 * generator_adversarial_loss(logits, "bce")
    )
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-6)
    assert set(out) == {"loss", "reg", "inter", "adv"} and out["loss"].requires_grad
    no_gan = total_generator_loss(p, y)
    assert no_gan["adv"].item() == 0.0
    assert no_gan["loss"].item() == pytest.approx((no_gan["reg"] + no_gan["inter"]).item(), rel=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        total_generator_loss(p, y[:, :4])
