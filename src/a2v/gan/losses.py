"""Adversarial and feature-matching losses for (multi-scale) discriminators.

Discriminator outputs are either one score tensor or, for :class:`~a2v.gan.discriminators.
MultiscaleDiscriminator`, a list per scale of feature lists whose last item is the score map.
Per-scale losses are *summed* over scales, as pix2pixHD's ``GANLoss`` does.

- ``"lsgan"``  Mao et al. 2017 (pix2pixHD default): D: (D(x)-1)^2 + D(G(z))^2; G: (D(G(z))-1)^2.
- ``"hinge"``  Lim & Ye 2017 / SPADE: D: relu(1-D(x)) + relu(1+D(G(z))); G: -D(G(z)).
- ``"vanilla"`` Goodfellow et al. 2014 on logits: binary cross-entropy against 1 / 0.
Each term is a mean over all score elements.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

GanMode = Literal["lsgan", "hinge", "vanilla"]
Scores = torch.Tensor | list[torch.Tensor] | list[list[torch.Tensor]]


def _score_maps(pred: Scores) -> list[torch.Tensor]:
    """The score tensor of each scale: the tensor itself, or the last item of each feature list."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    return [p[-1] if isinstance(p, list | tuple) else p for p in pred]


def _one_scale(score: torch.Tensor, real: bool, mode: GanMode, for_discriminator: bool) -> torch.Tensor:
    if mode == "lsgan":
        return F.mse_loss(score, torch.full_like(score, 1.0 if real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(score, torch.full_like(score, 1.0 if real else 0.0))
    if mode == "hinge":
        if not for_discriminator:
            if not real:
                raise ValueError("the hinge generator loss is defined for target 'real' only")
            return -score.mean()
        return F.relu(1.0 - score).mean() if real else F.relu(1.0 + score).mean()
    raise ValueError(f"GAN loss mode must be 'lsgan', 'hinge' or 'vanilla', got {mode!r}")


def gan_loss(pred: Scores, real: bool, mode: GanMode = "lsgan", for_discriminator: bool = True) -> torch.Tensor:
    """Adversarial loss of discriminator outputs ``pred`` against target real (True) / fake (False).

    pred: a (B,1,h,w) score tensor, or a list over scales of feature lists (last = scores).
    for_discriminator: False for the generator's term (only changes the hinge loss, which then is
    -mean(score) and needs ``real=True``). Returns a float scalar: the sum over scales.
    """
    return torch.stack([_one_scale(s, real, mode, for_discriminator) for s in _score_maps(pred)]).sum()


def discriminator_loss(pred_real: Scores, pred_fake: Scores, mode: GanMode = "lsgan") -> torch.Tensor:
    """pix2pixHD D objective: 0.5 * (loss(real -> 1) + loss(fake -> 0)); float scalar."""
    return 0.5 * (gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode))


def generator_gan_loss(pred_fake: Scores, mode: GanMode = "lsgan") -> torch.Tensor:
    """Adversarial term of the generator (fake judged as real); float scalar."""
    return gan_loss(pred_fake, True, mode, for_discriminator=False)


def feature_matching_loss(
    feats_fake: list[list[torch.Tensor]],
    feats_real: list[list[torch.Tensor]],
    n_layers: int | None = None,
    lambda_feat: float = 10.0,
) -> torch.Tensor:
    """pix2pixHD feature-matching loss (paper eq. 4, weights as in ``pix2pixHD_model.py``).

    sum_i sum_j  lambda_feat * 4/(n_layers+1) * 1/num_D * L1(D_i^j(fake), D_i^j(real).detach())
    over scales i < num_D and intermediate layers j (every layer except the final score map).
    feats_*: num_D lists of feature maps from :class:`~a2v.gan.discriminators.MultiscaleDiscriminator`.
    n_layers: the PatchGAN's ``n_layers`` (default: len(feats[0]) - 2). Returns a float scalar.
    """
    if len(feats_fake) != len(feats_real):
        raise ValueError(f"feature lists differ in scales: {len(feats_fake)} vs {len(feats_real)}")
    num_d = len(feats_fake)
    n_layers = len(feats_fake[0]) - 2 if n_layers is None else n_layers
    weight = lambda_feat * (4.0 / (n_layers + 1)) * (1.0 / num_d)
    terms = [
        F.l1_loss(f, r.detach())
        for fake_i, real_i in zip(feats_fake, feats_real, strict=True)
        for f, r in zip(fake_i[:-1], real_i[:-1], strict=True)
    ]
    if not terms:
        return feats_fake[0][-1].new_zeros(())
    return weight * torch.stack(terms).sum()
