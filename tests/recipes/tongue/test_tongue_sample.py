"""Cyclic long-utterance sampling: windows, carried-over frames kept exactly, any length, guidance."""

from __future__ import annotations

import pytest
import torch

from a2v.recipes.tongue.config import EDMConfig, SamplerConfig
from a2v.recipes.tongue.sample import cyclic_sample, window_starts, with_known_frames

SD = 0.25


def gauss_den(x, sigma, cond=None, **kw):
    """Exact denoiser of N(0, sd^2) data (per element)."""
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return x * SD**2 / (SD**2 + s**2)


def test_window_starts() -> None:
    assert window_starts(5, 8, 2) == [0]
    assert window_starts(8, 8, 2) == [0]
    assert window_starts(20, 8, 2) == [0, 6, 12]
    assert window_starts(21, 8, 2) == [0, 6, 12, 13]  # the last window ends exactly at the end


def test_with_known_frames_ends_on_known() -> None:
    known = torch.randn(1, 1, 3, 4, 4)
    den = with_known_frames(gauss_den, known)
    from a2v.diffusion import karras_sigmas, sample_heun

    sig = karras_sigmas(12, 0.002, 80.0)
    x = torch.randn(1, 1, 8, 4, 4) * sig[0]
    x[:, :, :3] += known
    out = sample_heun(den, x, sig)
    torch.testing.assert_close(out[:, :, :3], known, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [5, 8, 21])
def test_cyclic_sample_any_length_and_seams(n: int) -> None:
    calls = []

    def den(x, sigma, cond=None):
        calls.append(x.shape[2])
        return gauss_den(x, sigma)

    s = SamplerConfig(steps=32, overlap_frames=2)
    out = cyclic_sample(den, lambda a, b: None, n, 4, 8, s, EDMConfig(sigma_max=80.0),
                        torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, n, 4, 4) and torch.isfinite(out).all()
    assert out.std().item() == pytest.approx(SD, rel=0.2)
    assert max(calls) <= 8


def test_cyclic_overlap_is_carried_and_guidance_mixes() -> None:
    seen = []

    def den(x, sigma, cond=None):
        seen.append(cond)
        return gauss_den(x, sigma) + 0.0 * (cond.mean() if cond is not None else 0)

    cond_fn = lambda a, b: torch.full((1, b - a, 3), float(a))  # noqa: E731
    s = SamplerConfig(steps=3, overlap_frames=2, guidance_scale=2.0)
    cyclic_sample(den, cond_fn, 14, 4, 8, s, EDMConfig(), torch.Generator().manual_seed(0))
    starts = sorted({float(c[0, 0, 0]) for c in seen if c is not None and c.abs().sum() > 0})
    assert starts == [6.0]  # windows 0 and 6 (window 0's condition is all zeros, like the null)
    assert any(c is not None and c.abs().sum() == 0 for c in seen)  # unconditional calls of CFG
