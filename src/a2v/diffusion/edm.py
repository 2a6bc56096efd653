"""EDM preconditioning, training loss and cascade noise augmentation.

Karras, Aittala, Aila & Laine 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models" (EDM), Table 1 and Sec. 5; code layout as NVlabs/edm ``training/networks.py``
(``EDMPrecond``) and ``training/loss.py`` (``EDMLoss``).

The denoiser wraps a raw network F (EDM eq. 7)::

    D(x; sigma, cond) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), cond)
    c_skip  = sd^2 / (sigma^2 + sd^2)
    c_out   = sigma * sd / sqrt(sigma^2 + sd^2)
    c_in    = 1 / sqrt(sigma^2 + sd^2)
    c_noise = ln(sigma) / 4

with sd = sigma_data. The tongue paper's eqs. 4-6 print these with typos; the forms above are
EDM Table 1 (they give unit-variance network inputs and training targets, EDM Appendix B.6),
which the tests check.

The wrapped network's signature (documented contract)::

    net(x_in, c_noise, cond=None, **kw) -> F
      x_in:    float (B,...)  c_in * x, unit variance
      c_noise: float (B,)     ln(sigma) / 4
      cond:    any conditioning, e.g. (B,D) or (B,T,D), or None (unconditional model)
      kw:      extra inputs, e.g. a low-res condition and its augmentation level (cascades)
      returns: float (B,...) same shape as x_in
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from a2v.diffusion.guidance import drop_condition, random_drop_mask, resolve_null_cond
from a2v.diffusion.samplers import randn_like

__all__ = [
    "EDMPrecond",
    "EDMLoss",
    "edm_coefficients",
    "edm_loss_weight",
    "augment_condition",
    "random_aug_sigma",
]


def _per_sample(sigma: Tensor | float, x: Tensor) -> Tensor:
    """sigma as float (B,1,...,1) broadcastable to x (B,...); accepts a float, () or (B,)."""
    s = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
    s = s.reshape(-1).expand(x.shape[0]) if s.numel() == 1 else s.reshape(-1)  # ()->(B,)
    if s.shape[0] != x.shape[0]:
        raise ValueError(f"sigma has {s.shape[0]} values for a batch of {x.shape[0]}")
    return s.reshape((-1,) + (1,) * (x.ndim - 1))  # (B,)->(B,1,...,1)


def edm_coefficients(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(c_skip, c_out, c_in, c_noise) for noise level(s) ``sigma`` (EDM Table 1), same shape as sigma."""
    sd2 = sigma_data**2
    c_skip = sd2 / (sigma**2 + sd2)  # EDM Table 1 / eq. 7
    c_out = sigma * sigma_data / (sigma**2 + sd2).sqrt()  # EDM Table 1
    c_in = 1 / (sigma**2 + sd2).sqrt()  # EDM Table 1
    c_noise = sigma.log() / 4  # EDM Table 1
    return c_skip, c_out, c_in, c_noise


def edm_loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) = (sigma^2 + sd^2) / (sigma * sd)^2 = 1 / c_out^2 (EDM Table 1, eq. 8)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMPrecond(nn.Module):
    """EDM denoiser ``D(x; sigma, cond)`` around a raw network F (EDM eq. 7, Table 1).

    net: ``net(x_in, c_noise, cond=None, **kw) -> F`` (module docstring).
    sigma_data: std of the training data (its unit, e.g. 0.25 for a normalised tongue contour
    stream); sigma_min / sigma_max: the noise range the sampler should use (defaults of the
    tongue recipe; EDM uses 0.002 / 80).
    null_cond: the classifier-free-guidance null condition (see :mod:`a2v.diffusion.guidance`):
    None (zeros), a fixed tensor (stored as a buffer) or, with ``learn_null_cond=True``, a
    learned parameter initialised from it. Shape broadcastable to ``cond.shape[1:]``.
    """

    def __init__(
        self,
        net: nn.Module,
        sigma_data: float = 0.25,
        sigma_min: float = 0.002,
        sigma_max: float = 160.0,
        null_cond: Tensor | None = None,
        learn_null_cond: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.null_cond: Tensor | None
        if null_cond is None:
            if learn_null_cond:
                raise ValueError("learn_null_cond=True needs an initial null_cond tensor (e.g. zeros(D))")
            self.null_cond = None
        elif learn_null_cond:
            self.null_cond = nn.Parameter(null_cond.detach().clone())
        else:
            self.register_buffer("null_cond", null_cond.detach().clone())

    def forward(self, x: Tensor, sigma: Tensor | float, cond: Any = None, **kw: Any) -> Tensor:
        """x: float (B,...) noisy sample; sigma: float, () or (B,) noise level (same unit as x).

        Returns the denoised estimate D, float (B,...).
        """
        s = _per_sample(sigma, x)  # (B,1,...,1)
        c_skip, c_out, c_in, c_noise = edm_coefficients(s, self.sigma_data)
        f = self.net(c_in * x, c_noise.reshape(-1), cond=cond, **kw)  # (B,...)
        if f.shape != x.shape:
            raise ValueError(f"network output shape {tuple(f.shape)} != input shape {tuple(x.shape)}")
        return c_skip * x + c_out * f.to(x.dtype)  # EDM eq. 7


@dataclass(frozen=True)
class EDMLoss:
    """EDM training loss (EDM Sec. 5 / Table 1, NVlabs/edm ``EDMLoss``).

    ``ln(sigma) ~ N(P_mean, P_std^2)``, ``n ~ N(0, sigma^2 I)``,
    ``loss = lambda(sigma) * mean_elements((D(y + n; sigma, cond) - y)^2)`` with
    ``lambda = (sigma^2 + sd^2) / (sigma sd)^2``. The per-sample loss is the element mean (NVlabs
    sums; the mean keeps the scale independent of the data size). For an ideal denoiser on
    Gaussian data N(0, sd^2 I) its expectation is exactly 1 at every sigma.

    cond_dropout_prob: fraction of the batch whose ``cond`` is replaced by the null condition
    (classifier-free guidance training, Ho & Salimans 2022); no effect when ``cond`` is None.
    """

    P_mean: float = -1.2
    P_std: float = 1.2
    sigma_data: float = 0.25
    cond_dropout_prob: float = 0.1

    def sample_sigma(
        self, batch: int, device: torch.device | str | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """float (B,) training noise levels, ``exp(P_mean + P_std * N(0,1))`` (EDM Table 1)."""
        gen_device = generator.device if generator is not None else device
        rnd = torch.randn(batch, generator=generator, device=gen_device).to(device)  # (B,)
        return (rnd * self.P_std + self.P_mean).exp()

    def __call__(
        self,
        denoiser: nn.Module,
        y: Tensor,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sigma: Tensor | None = None,
        null_cond: Tensor | None = None,
        reduction: Literal["mean", "none"] = "mean",
        **kw: Any,
    ) -> Tensor:
        """y: float (B,...) clean data; cond: (B,...) or None; returns () or per-sample (B,).

        denoiser: ``denoiser(x, sigma, cond, **kw) -> D`` (an :class:`EDMPrecond`); its
        ``null_cond`` attribute is the null used for dropped rows unless ``null_cond`` is given.
        sigma: fixed noise levels (B,) instead of random ones (evaluation at given levels).
        Random draws, in this order, from ``generator``: ln-sigma (B,), noise like y, drop mask (B,).
        """
        b = y.shape[0]
        if sigma is None:
            sigma = self.sample_sigma(b, y.device, generator)  # (B,)
        s = _per_sample(sigma, y)  # (B,1,...,1)
        n = randn_like(y, generator) * s
        if cond is not None and self.cond_dropout_prob > 0:
            drop = random_drop_mask(b, self.cond_dropout_prob, y.device, generator)  # (B,)
            cond = drop_condition(cond, drop, resolve_null_cond(denoiser, null_cond))
        d = denoiser(y + n, s.reshape(-1), cond, **kw)  # (B,...)
        per_elem = edm_loss_weight(s, self.sigma_data) * (d - y) ** 2  # EDM Table 1: lambda ||D - y||^2
        per_sample = per_elem.reshape(b, -1).mean(dim=1)  # (B,...)->(B,)
        return per_sample.mean() if reduction == "mean" else per_sample


def random_aug_sigma(
    batch: int,
    sigma_aug_max: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """float (B,) training augmentation levels, uniform in [0, sigma_aug_max] (Ho et al. 2022, CDM Sec. 4.1)."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(batch, generator=generator, device=gen_device).to(device) * sigma_aug_max


def augment_condition(
    x_lowres: Tensor,
    sigma_aug: Tensor | float,
    generator: torch.Generator | None = None,
    sigma_floor: float = 0.002,
) -> tuple[Tensor, Tensor]:
    """Noise augmentation of a cascade's low-resolution condition.

    Ho, Saharia, Chan, Fleet, Norouzi & Salimans 2022, "Cascaded Diffusion Models for High
    Fidelity Image Generation", Sec. 4.1: the upsampled low-res input is corrupted with Gaussian
    noise of a random level during training (a fixed level at sampling) and the network is told
    the level, which makes the super-resolution stage robust to the base stage's artefacts.

    x_lowres: float (B,...) upsampled low-res video/image (data unit); sigma_aug: float or (B,)
    std of the added noise in the same unit (0 = clean; train with :func:`random_aug_sigma`).
    Returns ``(x_lowres + sigma_aug * N(0, I)`` (B,...), ``aug_level`` float (B,)) where
    ``aug_level = ln(max(sigma_aug, sigma_floor)) / 4`` is on the same scale as c_noise, so the
    network can embed it with its noise-level embedding.
    """
    s = _per_sample(sigma_aug, x_lowres)  # (B,1,...,1)
    noised = x_lowres + s * randn_like(x_lowres, generator)
    aug_level = s.reshape(-1).clamp_min(sigma_floor).log() / 4  # (B,1,...,1)->(B,)
    return noised, aug_level
