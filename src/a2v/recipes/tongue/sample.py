"""Sampling a tongue video of any length: one EDM sampler run per window, windows chained ("cyclic denoising").

Yang et al. 2024 generate long utterances by cyclic denoising: window by window, each window
overlapping the previous one by ``overlap`` frames and conditioned on those already generated
frames (the overlap and the conditioning mechanism are ours; the paper gives neither). We condition by replacement inside the denoiser: the first
``overlap`` frames of the denoised estimate are set to the known frames, so along the ODE
``dx/dsigma = (x - D)/sigma`` those frames follow ``known + sigma * eps`` and end exactly on
the known frames, while the network sees them (noised at the current level) as context for the
new frames. The overlap frames are kept from the previous window, so there is no seam to blend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from a2v.diffusion import guided_denoiser, karras_sigmas, sample_euler, sample_heun, sample_heun_stochastic
from a2v.recipes.tongue.config import EDMConfig, SamplerConfig

__all__ = ["make_sigmas", "run_sampler", "with_known_frames", "window_starts", "cyclic_sample"]


def make_sigmas(s: SamplerConfig, edm: EDMConfig, device: torch.device | str | None = None) -> Tensor:
    """Karras schedule (EDM eq. 5), float32 (steps+1,) from sigma_max down to sigma_min, then 0."""
    return karras_sigmas(s.steps, edm.sigma_min, edm.sigma_max, s.rho, device=device)


def run_sampler(s: SamplerConfig, denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
    """Dispatch to the sampler named in ``s`` (heun = EDM Alg. 1, heun_sde = Alg. 2, euler)."""
    if s.name == "heun":
        return sample_heun(denoiser, x, sigmas)
    if s.name == "euler":
        return sample_euler(denoiser, x, sigmas)
    return sample_heun_stochastic(denoiser, x, sigmas, generator=generator, S_churn=s.S_churn, S_tmin=s.S_tmin,
                                  S_tmax=s.S_tmax, S_noise=s.S_noise)


def with_known_frames(denoiser: Callable[..., Tensor], known: Tensor) -> Callable[..., Tensor]:
    """Denoiser whose estimate of the first K frames is ``known`` float (B,C,K,H,W); x is (B,C,F,H,W), F > K."""
    k = known.shape[2]

    def fn(x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        d = denoiser(x, sigma, cond)  # (B,C,F,H,W)
        return torch.cat([known.to(d.dtype), d[:, :, k:]], dim=2)  # (B,C,K,H,W)+(B,C,F-K,H,W)

    return fn


def window_starts(n_frames: int, clip: int, overlap: int) -> list[int]:
    """Start frames of the windows covering ``n_frames``: step ``clip - overlap``; the last one ends at n_frames."""
    if n_frames <= clip:
        return [0]
    hop = clip - overlap
    starts = list(range(0, n_frames - clip + 1, hop))
    if starts[-1] + clip < n_frames:
        starts.append(n_frames - clip)
    return starts


@torch.no_grad()
def cyclic_sample(denoiser: Callable[..., Tensor], cond_fn: Callable[[int, int], Tensor | None],
                  n_frames: int, size_px: int, clip: int, s: SamplerConfig, edm: EDMConfig,
                  generator: torch.Generator | None = None, lowres: Tensor | None = None,
                  aug_level: Tensor | None = None, device: torch.device | str = "cpu", progress: bool = False,
                  channels: int = 1) -> Tensor:
    """Generate float (1,C,n_frames,S,S) window by window.

    denoiser: an EDM denoiser ``(x, sigma, cond, **kw) -> D`` (an EDMPrecond); cond_fn(a, b): the
    fused condition f_c (1,b-a,D) of frames [a, b), or None (unconditional); lowres: float
    (1,C,n_frames,S,S) upsampled stage-0 video for stage 1, sliced per window, with aug_level (1,).
    Classifier-free guidance with ``s.guidance_scale`` when a condition is given.
    """
    from tqdm.auto import tqdm

    sigmas = make_sigmas(s, edm, device)
    out = torch.zeros(1, channels, n_frames, size_px, size_px, device=device)
    done = 0  # frames [0, done) are final
    starts = window_starts(n_frames, clip, min(s.overlap_frames, clip - 1))
    for a in tqdm(starts, desc="tongue windows", unit="window", disable=not progress):
        b = min(a + clip, n_frames)
        kw = {}
        if lowres is not None:
            kw = {"lowres": lowres[:, :, a:b], "aug_level": aug_level}
        cond = cond_fn(a, b)  # (1,b-a,D) | None
        if cond is not None and s.guidance_scale != 1.0:
            den = functools.partial(guided_denoiser(denoiser, cond, s.guidance_scale), **kw)
        else:
            den = _bind(denoiser, cond, kw)
        g_dev = generator.device if generator is not None else device
        x = torch.randn((1, channels, b - a, size_px, size_px), generator=generator, device=g_dev).to(device)
        x = x * sigmas[0]  # EDM Alg. 1 line 1: x_0 ~ N(0, sigma_max^2 I)
        k = max(0, done - a)  # frames of this window already generated
        if k > 0:
            known = out[:, :, a:a + k]  # (1,C,K,S,S)
            x[:, :, :k] += known
            den = with_known_frames(den, known)
        out[:, :, a:b] = run_sampler(s, den, x, sigmas, generator)
        done = b
    return out


def _bind(denoiser: Callable[..., Tensor], cond: Tensor | None, kw: dict[str, Any]) -> Callable[..., Tensor]:
    def fn(x: Tensor, sigma: Tensor, _cond: Any = None) -> Tensor:
        return denoiser(x, sigma, cond, **kw)

    return fn
