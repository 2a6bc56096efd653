"""DDPM training loss and sampling with classifier-free guidance, on diffusers schedulers.

Ho et al. 2020 ("Denoising Diffusion Probabilistic Models") with the cosine schedule of
Nichol & Dhariwal 2021 (eq. 17), classifier-free guidance of Ho & Salimans 2022, and fast
samplers (DDIM, Song et al. 2021; DPM-Solver++, Lu et al. 2022). The schedules and update
rules are diffusers' (``DDPMScheduler``, ``DDIMScheduler``, ``DPMSolverMultistepScheduler``);
this module adds the loss, the guidance mix and the sampling loop around an eps-network.

The network is any callable ``eps_fn(x_t, t, cond) -> eps``: x_t float32 (B,C,H,W) in the
data range (images in [-1, 1]), t int64 (B,) in ``[0, num_train_timesteps)``, cond (B,...)
or None, eps (B,C,H,W). Conventions of the null condition (an attribute ``null_cond`` of the
network, or zeros) are those of :mod:`a2v.diffusion.guidance`.

Guidance: the face paper's ``eps = (1 + w) eps(x, c) - w eps(x)`` (w >= 0, 0 = plain
conditional), i.e. ``scale = 1 + w`` in :func:`a2v.diffusion.guidance.cfg_combine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from a2v.diffusion.guidance import (
    cfg_combine,
    drop_condition,
    null_like,
    random_drop_mask,
    resolve_null_cond,
    scale_from_w,
)

__all__ = [
    "SamplerKind",
    "cosine_alphas_cumprod",
    "make_scheduler",
    "q_sample",
    "ddpm_training_loss",
    "guided_eps",
    "ddpm_sample",
]

SamplerKind = Literal["ancestral", "ddim", "dpmsolver++"]
EpsFn = Callable[[Tensor, Tensor, Any], Tensor]


def cosine_alphas_cumprod(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Closed-form cosine schedule, float64 (T,): alpha_bar at t = 1..T (Nichol & Dhariwal 2021, eq. 17).

    ``alpha_bar(t) = f(t) / f(0)``, ``f(t) = cos((t/T + s) / (1 + s) * pi/2)^2``; betas are
    clipped at ``max_beta`` (their Sec. 3.2), which only changes the last few steps.
    Index ``i`` holds ``alpha_bar(i + 1)`` (diffusers' ``alphas_cumprod[i]``).
    """
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # (T+1,)
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2  # Nichol & Dhariwal eq. 17
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)  # (T,)  beta_t = 1 - abar_t / abar_{t-1}
    return torch.cumprod(1 - betas, dim=0)  # (T,)


def make_scheduler(
    kind: SamplerKind = "ancestral",
    num_train_timesteps: int = 2000,
    beta_schedule: str = "squaredcos_cap_v2",
    prediction_type: str = "epsilon",
    timestep_spacing: str | None = None,
    clip_sample: bool = False,
) -> Any:
    """A diffusers scheduler over one training schedule (cosine, 2000 steps by default).

    ``ancestral``: ``DDPMScheduler`` (Ho et al. 2020 eq. 6-7 posterior, fixed small variance);
    ``ddim``: ``DDIMScheduler`` (eta = 0, deterministic); ``dpmsolver++``: second-order multistep
    ``DPMSolverMultistepScheduler``. Fast samplers use "trailing" timestep spacing unless told
    (it reaches the last training step, which matters at 25-50 steps). ``clip_sample``: clamp
    each predicted x_0 to [-1, 1] (images; ADM practice), for DPM-Solver++ through its thresholding.
    """
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    common = {"num_train_timesteps": num_train_timesteps, "beta_schedule": beta_schedule,
              "prediction_type": prediction_type}
    if kind == "ancestral":
        return DDPMScheduler(**common, clip_sample=clip_sample, timestep_spacing=timestep_spacing or "leading")
    if kind == "ddim":
        return DDIMScheduler(**common, clip_sample=clip_sample, set_alpha_to_one=False,
                             timestep_spacing=timestep_spacing or "trailing")
    if kind == "dpmsolver++":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           thresholding=clip_sample, dynamic_thresholding_ratio=1.0,
                                           sample_max_value=1.0,
                                           timestep_spacing=timestep_spacing or "trailing")
    raise ValueError(f"unknown sampler '{kind}' (choose ancestral, ddim or dpmsolver++)")


def q_sample(scheduler: Any, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (Ho et al. 2020, eq. 4). x0, noise (B,...), t int (B,)."""
    return scheduler.add_noise(x0, noise, t)


def ddpm_training_loss(
    eps_fn: EpsFn,
    x0: Tensor,
    cond: Tensor | None,
    scheduler: Any,
    cond_dropout_prob: float = 0.0,
    null_cond: Tensor | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: Literal["mean", "none"] = "mean",
) -> Tensor:
    """Simple eps loss ``|| eps - eps_fn(x_t, t, c) ||^2`` (Ho et al. 2020, eq. 14) with condition dropout.

    x0: float (B,C,H,W) data; cond: (B,...) or None; a fraction ``cond_dropout_prob`` of the
    conditions is replaced by the null condition (Ho & Salimans 2022; ``null_cond`` defaults to
    ``eps_fn.null_cond``). t: int64 (B,) uniform in [0, T) unless given; noise ~ N(0, I) unless
    given. Returns the mean loss () or, with ``reduction="none"``, the per-sample loss (B,).
    """
    b, device = x0.shape[0], x0.device
    num_t = scheduler.config.num_train_timesteps
    if t is None:
        t = torch.randint(0, num_t, (b,), generator=generator, device=generator.device if generator else device)
        t = t.to(device)  # (B,)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=generator.device if generator else device)
        noise = noise.to(device=device, dtype=x0.dtype)  # (B,C,H,W)
    if cond is not None and cond_dropout_prob > 0:
        drop = random_drop_mask(b, cond_dropout_prob, device, generator)  # (B,)
        cond = drop_condition(cond, drop, resolve_null_cond(eps_fn, null_cond))
    x_t = q_sample(scheduler, x0, t, noise)  # (B,C,H,W)
    err = F.mse_loss(eps_fn(x_t, t, cond), noise, reduction="none")  # (B,C,H,W)
    per_sample = err.flatten(1).mean(1)  # (B,C,H,W)->(B,)
    return per_sample if reduction == "none" else per_sample.mean()


def guided_eps(
    eps_fn: EpsFn, x: Tensor, t: Tensor, cond: Tensor | None, w: float = 0.0,
    null_cond: Tensor | None = None, batched: bool = True,
) -> Tensor:
    """Classifier-free guided noise ``(1 + w) eps(x, c) - w eps(x, null)`` (face paper; Ho & Salimans 2022).

    x (B,C,H,W); t int64 (B,); cond (B,...) or None (unconditional: w is ignored).
    ``w == 0`` costs one call; otherwise one call on a doubled batch (``batched``) or two calls.
    """
    if cond is None or w == 0.0:
        return eps_fn(x, t, cond)
    uncond = null_like(cond, resolve_null_cond(eps_fn, null_cond))  # (B,...)
    if batched:
        both = eps_fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, uncond]))  # (2B,C,H,W)
        e_c, e_u = both.chunk(2)  # (2B,...)->2x(B,...)
    else:
        e_c, e_u = eps_fn(x, t, cond), eps_fn(x, t, uncond)
    return cfg_combine(e_u, e_c, scale_from_w(w))  # = (1+w) e_c - w e_u


@torch.no_grad()
def ddpm_sample(
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    scheduler: Any,
    cond: Tensor | None = None,
    num_inference_steps: int | None = None,
    w: float = 0.0,
    null_cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    x_T: Tensor | None = None,
    clip_range: float | None = 1.0,
    progress: bool = True,
) -> Tensor:
    """Sample x_0 float32 ``shape`` = (B,C,H,W) from N(0, I) with ``scheduler``'s update rule.

    ``num_inference_steps``: None = every training step (ancestral 2000-step DDPM); 25-50 with a
    DDIM / DPM-Solver++ scheduler from :func:`make_scheduler`. ``w``: guidance weight
    (:func:`guided_eps`). ``generator`` makes the noise (and ancestral steps) reproducible;
    ``x_T`` replaces the initial noise. ``clip_range``: the result is clamped to [-r, r]
    (None: not clamped). The scheduler's state (timesteps) is set by this call.
    """
    n = num_inference_steps or scheduler.config.num_train_timesteps
    scheduler.set_timesteps(n, device=device)
    if x_T is None:
        x = torch.randn(shape, generator=generator, device=generator.device if generator else device)
        x = x.to(device) * scheduler.init_noise_sigma  # (B,C,H,W)
    else:
        x = x_T.to(device)
    if cond is not None:
        cond = cond.to(device)
    from tqdm.auto import tqdm

    step_kw = {"generator": generator} if "generator" in _step_params(scheduler) else {}
    for t in tqdm(scheduler.timesteps, desc="sampling", unit="step", disable=not progress, leave=False):
        tb = t.to(device=device, dtype=torch.long).expand(shape[0])  # ()->(B,)
        x_in = scheduler.scale_model_input(x, t)  # (B,C,H,W)
        eps = guided_eps(eps_fn, x_in, tb, cond, w, null_cond)  # (B,C,H,W)
        x = scheduler.step(eps, t, x, **step_kw).prev_sample  # (B,C,H,W)
    return x.clamp(-clip_range, clip_range) if clip_range is not None else x


def _step_params(scheduler: Any) -> set[str]:
    import inspect

    return set(inspect.signature(scheduler.step).parameters)
