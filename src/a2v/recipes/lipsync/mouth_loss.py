"""Stage 1 losses (Zheng et al. 2020, §3.1): regression + inter-frame + adversarial.

Mouth sequences are float (B,F,D) PCA coefficients at 25 fps. The discriminator gives raw
logits, (B,1) or (B,F). GAN objective: LSGAN (Mao et al. 2017, eq. 2: real -> 1, fake -> 0,
generator pushes fake -> 1) or the non-saturating BCE GAN (Goodfellow et al. 2014).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "regression_loss",
    "inter_frame_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "total_generator_loss",
]

GanLoss = Literal["lsgan", "bce"]


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between predicted and target mouth PCA, (B,F,D) each -> scalar."""
    return F.mse_loss(pred, target)


def inter_frame_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pairwise inter-frame loss: MSE of consecutive-frame differences, (B,F,D) each -> scalar.

    ``mean_{b,f,d} ((p[f+1]-p[f]) - (y[f+1]-y[f]))^2``; needs F >= 2.
    """
    if pred.shape[1] < 2:
        raise ValueError(f"inter_frame_loss needs at least 2 frames, got shape {tuple(pred.shape)}")
    dp = pred[:, 1:] - pred[:, :-1]  # (B,F,D)->(B,F-1,D)
    dy = target[:, 1:] - target[:, :-1]  # (B,F,D)->(B,F-1,D)
    return F.mse_loss(dp, dy)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: GanLoss = "lsgan"
) -> torch.Tensor:
    """Discriminator loss on raw logits (any equal shapes) -> scalar; fake_logits from a detached generator output."""
    if kind == "lsgan":
        return 0.5 * (((real_logits - 1) ** 2).mean() + (fake_logits**2).mean())  # Mao et al. 2017, eq. 2
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"unknown GAN loss '{kind}' (choose lsgan or bce)")


def generator_adversarial_loss(fake_logits: torch.Tensor, kind: GanLoss = "lsgan") -> torch.Tensor:
    """Generator adversarial term on the discriminator's logits for generated mouths -> scalar."""
    if kind == "lsgan":
        return 0.5 * ((fake_logits - 1) ** 2).mean()  # Mao et al. 2017, eq. 2
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))  # non-saturating
    raise ValueError(f"unknown GAN loss '{kind}' (choose lsgan or bce)")


def total_generator_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    fake_logits: torch.Tensor | None = None,
    *,
    reg_weight: float = 1.0,
    inter_weight: float = 1.0,
    adv_weight: float = 0.01,
    gan_loss: GanLoss = "lsgan",
) -> dict[str, torch.Tensor]:
    """Weighted stage 1 generator loss.

    ``loss = reg_weight * MSE + inter_weight * inter-frame MSE + adv_weight * adversarial``;
    the adversarial term is 0 when ``fake_logits`` is None (the TCN/LSTM baselines).
    Returns {"loss", "reg", "inter", "adv"}, scalars; only "loss" carries the graph to backprop.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    reg = regression_loss(pred, target)
    inter = inter_frame_loss(pred, target)
    adv = generator_adversarial_loss(fake_logits, gan_loss) if fake_logits is not None else reg.new_zeros(())
    loss = reg_weight * reg + inter_weight * inter + adv_weight * adv
    return {"loss": loss, "reg": reg.detach(), "inter": inter.detach(), "adv": adv.detach()}
