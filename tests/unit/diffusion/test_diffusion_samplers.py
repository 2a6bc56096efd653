"""EDM samplers on Gaussian data, where the exact denoiser and the exact ODE solution are known."""

from __future__ import annotations

import math

import pytest
import torch

from a2v.diffusion import (
    karras_sigmas,
    prior_sample,
    sample_euler,
    sample_heun,
    sample_heun_stochastic,
)
from a2v.diffusion.samplers import heun_nfe

SD = 0.25


class GaussianDenoiser:
    """Exact denoiser of N(0, sd^2 I) data: D(x; s) = x sd^2 / (sd^2 + s^2); counts calls."""

    def __init__(self, sd: float = SD) -> None:
        self.sd, self.calls = sd, 0

    def __call__(self, x, sigma, cond=None):
        self.calls += 1
        assert sigma.shape == (x.shape[0],)
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return x * self.sd**2 / (self.sd**2 + s**2)


def test_karras_schedule_endpoints_and_rho() -> None:
    s = karras_sigmas(10, 0.002, 160.0, rho=7.0, dtype=torch.float64)
    assert s.shape == (11,) and s[-1] == 0
    assert s[0].item() == pytest.approx(160.0) and s[-2].item() == pytest.approx(0.002)
    assert bool((s[1:] < s[:-1]).all())
    # sigma^(1/rho) is linear in the step index (EDM eq. 5)
    r = s[:-1] ** (1 / 7)
    torch.testing.assert_close(r[1:] - r[:-1], torch.full((9,), (r[-1] - r[0]).item() / 9, dtype=torch.float64))
    assert karras_sigmas(1, 0.002, 80.0).tolist() == [pytest.approx(80.0), 0.0]
    with pytest.raises(ValueError):
        karras_sigmas(0)
    with pytest.raises(ValueError):
        karras_sigmas(5, 1.0, 0.5)


def test_heun_follows_the_exact_ode_second_order_and_nfe() -> None:
    """For Gaussian data the PF-ODE solution is x(s) = x(S) sqrt(sd^2 + s^2) / sqrt(sd^2 + S^2)."""
    x = prior_sample((4000, 3), karras_sigmas(1, 0.002, 160.0), torch.Generator().manual_seed(0)).double()
    exact = x * SD / math.sqrt(SD**2 + 160.0**2)
    errs = []
    for n in (32, 64, 128):
        den = GaussianDenoiser()
        out = sample_heun(den, x, karras_sigmas(n, 0.002, 160.0, dtype=torch.float64))
        assert den.calls == heun_nfe(n) == 2 * n - 1
        errs.append(((out - exact).abs() / exact.abs()).max().item())
    assert errs[2] < 2e-3 and out.std().item() == pytest.approx(SD, rel=0.03)
    assert 3.5 < errs[0] / errs[1] < 5 and 3.5 < errs[1] / errs[2] < 5  # second order: error / 4 per doubling


def test_euler_first_order_converges() -> None:
    den = GaussianDenoiser()
    x = prior_sample((2000, 2), karras_sigmas(1, 0.002, 80.0), torch.Generator().manual_seed(1))
    errs = []
    for n in (8, 64):
        sig = karras_sigmas(n, 0.002, 80.0, dtype=torch.float64)
        out = sample_euler(den, x.double(), sig)
        errs.append((out - x.double() * SD / math.sqrt(SD**2 + 80.0**2)).abs().max().item())
    assert errs[1] < errs[0] / 4
    assert den.calls == 8 + 64


def test_stochastic_heun_gives_data_variance_and_is_seeded() -> None:
    sigmas = karras_sigmas(128, 0.002, 80.0)
    x = prior_sample((20000,), sigmas, torch.Generator().manual_seed(2))
    kw = dict(S_churn=40.0, S_tmin=0.01, S_tmax=50.0, S_noise=1.0)
    a = sample_heun_stochastic(GaussianDenoiser(), x, sigmas, generator=torch.Generator().manual_seed(3), **kw)
    b = sample_heun_stochastic(GaussianDenoiser(), x, sigmas, generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(a, b)
    assert a.std().item() == pytest.approx(SD, rel=0.03)
    # S_churn = 0 is the deterministic sampler
    det = sample_heun_stochastic(GaussianDenoiser(), x, sigmas, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(det, sample_heun(GaussianDenoiser(), x, sigmas))


def test_bad_schedule_is_refused() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="non-increasing"):
        sample_heun(GaussianDenoiser(), x, torch.tensor([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="1-D"):
        sample_euler(GaussianDenoiser(), x, torch.tensor([1.0]))


def test_callback_sees_every_step() -> None:
    seen = []
    sigmas = karras_sigmas(5)
    sample_heun(GaussianDenoiser(), prior_sample((2, 2), sigmas), sigmas, callback=lambda d: seen.append(d["i"]))
    assert seen == [0, 1, 2, 3, 4]
