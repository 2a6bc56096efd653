"""Classifier-free guidance: null condition, condition dropout, guided denoiser.

Ho & Salimans 2022, "Classifier-Free Diffusion Guidance": one network learns both the
conditional and the unconditional model by replacing the condition with a *null condition*
for a random fraction of the training batch (``cond_dropout_prob``, 10% here by default); at
sampling time both outputs are mixed.

Null condition (one representation for every recipe)
    ``null_cond`` is a tensor broadcastable to ``cond.shape[1:]`` (no batch axis), or ``None``
    meaning all zeros. It works for a vector condition ``cond: (B,D)`` (``null_cond: (D,)``) and
    for a sequence condition ``cond: (B,T,D)`` (``null_cond: (D,)`` or ``(1,D)`` broadcasts over
    any T, or ``(T,D)`` for a fixed T). A learned null embedding is an ``nn.Parameter`` stored as
    the attribute ``null_cond`` of the denoiser/network (``EDMPrecond(..., null_cond=...)``
    does this); :func:`guided_denoiser`, :class:`a2v.diffusion.edm.EDMLoss` and
    :func:`a2v.diffusion.ddpm.ddpm_training_loss` all read it from there when no explicit
    ``null_cond`` is passed, so training and sampling use the same null by construction.
    A one-hot class label with ``null_cond=None`` gets the usual all-zeros "no class" token.

Guidance scale convention
    ``D = D_uncond + scale * (D_cond - D_uncond)``  (Ho & Salimans 2022, eq. 6 written with
    ``scale = 1 + w``): ``scale = 1`` is the plain conditional model, ``scale = 0`` the
    unconditional one, ``scale > 1`` strengthens the condition. The face paper's form
    ``eps = (1 + w) eps(x, c) - w eps(x)`` is the same with ``scale = 1 + w``
    (:func:`scale_from_w`); ``w = 0`` is plain conditional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "null_like",
    "drop_condition",
    "random_drop_mask",
    "cfg_combine",
    "scale_from_w",
    "guided_denoiser",
    "resolve_null_cond",
]


def resolve_null_cond(owner: Any, null_cond: Tensor | None = None) -> Tensor | None:
    """``null_cond`` if given, else ``owner.null_cond`` if the denoiser/network has one, else None (zeros)."""
    if null_cond is not None:
        return null_cond
    return getattr(owner, "null_cond", None)


def null_like(cond: Tensor, null_cond: Tensor | None = None) -> Tensor:
    """The null condition with the shape, dtype and device of ``cond``.

    cond: (B,...) e.g. (B,D) or (B,T,D); null_cond: broadcastable to ``cond.shape[1:]`` or None (zeros).
    Returns (B,...) like ``cond``; gradients flow into a learned ``null_cond``.
    """
    if null_cond is None:
        return torch.zeros_like(cond)
    null = null_cond.to(device=cond.device, dtype=cond.dtype)
    try:
        return null.expand(cond.shape[1:]).unsqueeze(0).expand(cond.shape)  # (...)->(B,...)
    except RuntimeError as e:
        raise ValueError(
            f"null_cond of shape {tuple(null_cond.shape)} does not broadcast to the condition's "
            f"per-sample shape {tuple(cond.shape[1:])}"
        ) from e


def random_drop_mask(
    batch: int, prob: float, device: torch.device | str | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """bool (B,): True for the samples whose condition is replaced by the null (probability ``prob``)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"cond_dropout_prob must be in [0, 1], got {prob}")
    u = torch.rand(batch, generator=generator, device=generator.device if generator is not None else device)
    return u.to(device) < prob


def drop_condition(cond: Tensor, drop: Tensor, null_cond: Tensor | None = None) -> Tensor:
    """Replace ``cond[b]`` by the null condition where ``drop[b]`` is True.

    cond: (B,...); drop: bool (B,); null_cond: see :func:`null_like`. Returns (B,...).
    """
    keep_shape = (cond.shape[0],) + (1,) * (cond.ndim - 1)
    return torch.where(drop.to(cond.device).reshape(keep_shape), null_like(cond, null_cond), cond)


def cfg_combine(d_uncond: Tensor, d_cond: Tensor, scale: float) -> Tensor:
    """``d_uncond + scale * (d_cond - d_uncond)`` (Ho & Salimans 2022, eq. 6 with scale = 1 + w)."""
    return d_uncond + scale * (d_cond - d_uncond)


def scale_from_w(w: float) -> float:
    """Face paper's ``eps = (1+w) eps(x,c) - w eps(x)`` as a guidance scale: ``scale = 1 + w``."""
    return 1.0 + float(w)


def guided_denoiser(
    denoiser: Callable[..., Tensor],
    cond: Tensor,
    scale: float,
    null_cond: Tensor | None = None,
    batched: bool = False,
) -> Callable[..., Tensor]:
    """Bind ``cond`` and return a guided denoiser ``fn(x, sigma, cond=None) -> D``.

    ``denoiser(x, sigma, cond) -> D`` (an EDM denoiser, or any model output that is linear in the
    guidance mix, e.g. eps). The returned function ignores the sampler's ``cond`` argument (pass
    None). ``scale == 1`` costs one call (plain conditional); ``scale == 0`` one call
    (unconditional); otherwise two calls, or one call on a doubled batch when ``batched=True``
    (only when the denoiser's other inputs do not depend on the batch).
    null_cond: see :func:`null_like`; defaults to ``denoiser.null_cond`` when present.
    """
    null = resolve_null_cond(denoiser, null_cond)

    def fn(x: Tensor, sigma: Tensor, _cond: Any = None, **kw: Any) -> Tensor:
        if scale == 1.0:
            return denoiser(x, sigma, cond, **kw)
        uncond = null_like(cond, null)
        if scale == 0.0:
            return denoiser(x, sigma, uncond, **kw)
        if batched:
            sig = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).expand(x.shape[0])  # ()->(B,)
            both = denoiser(
                torch.cat([x, x]), torch.cat([sig, sig]), torch.cat([cond, uncond]), **kw
            )  # (2B,...)
            d_cond, d_uncond = both.chunk(2)  # (2B,...)->2x(B,...)
        else:
            d_cond = denoiser(x, sigma, cond, **kw)
            d_uncond = denoiser(x, sigma, uncond, **kw)
        return cfg_combine(d_uncond, d_cond, scale)

    return fn
