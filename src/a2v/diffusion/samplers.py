"""EDM samplers: pure functions over a denoiser, in the sigma (= t) parametrisation.

Karras, Aittala, Aila & Laine 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models" (EDM). With sigma(t) = t and s(t) = 1 the probability-flow ODE is
``dx/dsigma = (x - D(x; sigma)) / sigma`` (EDM eq. 1 / 3, Algorithm 1 line 4).

Every sampler has one signature (as in k-diffusion's ``k_diffusion.sampling``)::

    sample_xxx(denoiser, x, sigmas, cond=None, generator=None, progress=False, **options) -> x

- ``denoiser(x, sigma, cond) -> D``: x float (B,...); sigma float (B,) (one noise level per
  sample, the same for the whole batch here); returns the denoised estimate, (B,...) like x.
  Bind extra network inputs with ``functools.partial(precond, lowres=..., aug_level=...)``; wrap
  with :func:`a2v.diffusion.guidance.guided_denoiser` for classifier-free guidance.
- ``x``: the starting sample at noise level ``sigmas[0]``, i.e. ``sigmas[0] * N(0, I)``
  (see :func:`prior_sample`).
- ``sigmas``: float (N+1,) decreasing, usually :func:`karras_sigmas` ending with 0.
- ``generator``: used only by stochastic samplers.
- Returns the sample at ``sigmas[-1]`` (the clean sample when it is 0), shape and dtype of x.

Number of denoiser evaluations (NFE) for N steps ending at sigma = 0: Euler N; Heun 2N - 1
(the last step, to sigma = 0, is an Euler step: EDM Algorithm 1 line 6).
Written by hand (a few lines each) so that they take a ``torch.Generator`` and our denoiser
signature; ``tests/reference/test_heun_kdiffusion.py`` checks them against k-diffusion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import trange

__all__ = [
    "Denoiser",
    "karras_sigmas",
    "prior_sample",
    "sample_euler",
    "sample_heun",
    "sample_heun_stochastic",
    "heun_nfe",
    "randn_like",
]

Denoiser = Callable[..., Tensor]  # denoiser(x: (B,...), sigma: (B,), cond) -> D (B,...)
Callback = Callable[[dict[str, Any]], None]


def karras_sigmas(
    n: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """EDM time steps, float (n+1,) decreasing from ``sigma_max`` to ``sigma_min``, then 0.

    ``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``,
    i < n, ``sigma_n = 0`` (EDM eq. 5). ``n`` = number of sampling steps.
    """
    if n < 1:
        raise ValueError(f"number of steps must be >= 1, got {n}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)  # (n,)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho  # EDM eq. 5
    sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])  # (n,)->(n+1,)
    return sigmas.to(device=device, dtype=dtype)


def prior_sample(
    shape: tuple[int, ...],
    sigmas: Tensor,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Starting sample ``sigmas[0] * N(0, I)``, float ``shape`` (EDM Algorithm 1 line 1)."""
    gen_device = generator.device if generator is not None else device
    x = torch.randn(shape, generator=generator, device=gen_device, dtype=dtype)
    return x.to(device) * sigmas[0].to(device=device, dtype=dtype)


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """N(0, I) like x, drawn on the generator's device (CPU generator + CUDA x works), then moved."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def heun_nfe(n_steps: int, ends_at_zero: bool = True) -> int:
    """Denoiser evaluations of :func:`sample_heun` for ``n_steps``: 2n - 1 (last step Euler) or 2n."""
    return 2 * n_steps - 1 if ends_at_zero else 2 * n_steps


def _check_sigmas(sigmas: Tensor) -> None:
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be 1-D with at least 2 values, got shape {tuple(sigmas.shape)}")
    if bool((sigmas[1:] > sigmas[:-1]).any()) or bool((sigmas < 0).any()):
        raise ValueError("sigmas must be non-negative and non-increasing (e.g. karras_sigmas(...))")


def _ode_slope(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """dx/dsigma = (x - D(x; sigma)) / sigma (EDM eq. 3 with sigma(t) = t, Algorithm 1 line 4)."""
    return (x - denoised) / sigma


def _prepare(x: Tensor, sigmas: Tensor) -> tuple[Tensor, Tensor]:
    _check_sigmas(sigmas)
    return sigmas.to(device=x.device, dtype=x.dtype), x.new_ones([x.shape[0]])  # s_in: (B,)


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    cond: Any = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> Tensor:
    """First-order (Euler) ODE sampler; NFE = N. x: float (B,...) at ``sigmas[0]``; returns (B,...)."""
    sigmas, s_in = _prepare(x, sigmas)
    for i in trange(len(sigmas) - 1, disable=not progress, desc="euler"):
        denoised = denoiser(x, sigmas[i] * s_in, cond)
        d = _ode_slope(x, sigmas[i], denoised)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    cond: Any = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> Tensor:
    """Deterministic Heun sampler (EDM Algorithm 1); NFE = 2N - 1 when ``sigmas[-1] == 0``.

    x: float (B,...) at ``sigmas[0]``; sigmas: (N+1,); returns (B,...). ``generator`` is unused.
    """
    sigmas, s_in = _prepare(x, sigmas)
    for i in trange(len(sigmas) - 1, disable=not progress, desc="heun"):
        x = _heun_step(denoiser, x, sigmas[i], sigmas[i + 1], s_in, cond, callback, i)
    return x


def _heun_step(
    denoiser: Denoiser,
    x: Tensor,
    sigma: Tensor,
    sigma_next: Tensor,
    s_in: Tensor,
    cond: Any,
    callback: Callback | None,
    i: int,
) -> Tensor:
    """One Heun step from ``sigma`` to ``sigma_next`` (EDM Algorithm 1 lines 4-8 / Algorithm 2 lines 7-11)."""
    denoised = denoiser(x, sigma * s_in, cond)
    d = _ode_slope(x, sigma, denoised)  # Alg. 1 line 4
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
    dt = sigma_next - sigma
    x_next = x + d * dt  # Alg. 1 line 5 (Euler)
    if sigma_next == 0:
        return x_next  # Alg. 1 line 6: no correction at sigma = 0
    d_next = _ode_slope(x_next, sigma_next, denoiser(x_next, sigma_next * s_in, cond))  # line 7
    return x + dt * (0.5 * d + 0.5 * d_next)  # Alg. 1 line 8 (trapezoidal rule)


@torch.no_grad()
def sample_heun_stochastic(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    cond: Any = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    S_churn: float = 0.0,
    S_tmin: float = 0.0,
    S_tmax: float = float("inf"),
    S_noise: float = 1.0,
    noise_sampler: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Stochastic Heun sampler (EDM Algorithm 2); NFE = 2N - 1 when ``sigmas[-1] == 0``.

    Before step i, for ``S_tmin <= sigma_i <= S_tmax``, the noise level is raised to
    ``sigma_hat = sigma_i (1 + gamma)``, ``gamma = min(S_churn / N, sqrt(2) - 1)``, by adding
    ``sqrt(sigma_hat^2 - sigma_i^2) * S_noise * eps`` (Alg. 2 lines 4-6). ``S_churn = 0`` is
    :func:`sample_heun`. One ``eps ~ N(0, I)`` is drawn per step, used or not (as NVlabs/edm
    and k-diffusion do), from ``generator`` on x's device, or from ``noise_sampler(x)`` when given.
    x: float (B,...) at ``sigmas[0]``; sigmas: (N+1,); returns (B,...).
    """
    sigmas, s_in = _prepare(x, sigmas)
    n = len(sigmas) - 1
    gamma_max = min(S_churn / n, math.sqrt(2.0) - 1.0)  # EDM Alg. 2 line 3
    for i in trange(n, disable=not progress, desc="heun-sde"):
        sigma = sigmas[i]
        gamma = gamma_max if S_tmin <= float(sigma) <= S_tmax else 0.0
        if noise_sampler is not None:
            eps = noise_sampler(x) * S_noise
        else:
            eps = randn_like(x, generator) * S_noise
        sigma_hat = sigma * (gamma + 1.0)  # Alg. 2 line 5
        if gamma > 0:
            x = x + eps * (sigma_hat**2 - sigma**2).sqrt()  # Alg. 2 line 6
        x = _heun_step(denoiser, x, sigma_hat, sigmas[i + 1], s_in, cond, callback, i)
    return x
