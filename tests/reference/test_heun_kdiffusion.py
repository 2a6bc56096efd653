"""Our EDM samplers and schedule equal k-diffusion's (Crowson), same denoiser, noise and schedule, within 1e-5.

k-diffusion's package ``__init__`` imports its training stack (wandb, clip, kornia...); only
``k_diffusion.sampling`` and ``k_diffusion.utils`` are needed, so when the full import fails
the two modules are loaded from the installed package under a bare parent package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from a2v.diffusion import (
    EDMPrecond,
    karras_sigmas,
    prior_sample,
    sample_euler,
    sample_heun,
    sample_heun_stochastic,
)


def _kdiffusion_sampling():
    try:
        return importlib.import_module("k_diffusion.sampling")
    except ImportError:
        pass
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion is not installed (pip install k-diffusion --no-deps; needs torchsde, torchdiffeq)")
    saved = {k: v for k, v in sys.modules.items() if k == "k_diffusion" or k.startswith("k_diffusion.")}
    for k in saved:
        del sys.modules[k]
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["k_diffusion"] = pkg
    try:
        return importlib.import_module("k_diffusion.sampling")
    except ImportError as e:
        pytest.skip(f"k_diffusion.sampling cannot be imported: {e}")
    finally:
        for k in [k for k in sys.modules if k == "k_diffusion" or k.startswith("k_diffusion.")]:
            del sys.modules[k]
        sys.modules.update(saved)


class TinyNet(nn.Module):
    """A fixed nonlinear raw network F(x_in, c_noise, cond) on (B,2,4) samples."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mlp = nn.Sequential(nn.Linear(8 + 1 + 3, 32), nn.SiLU(), nn.Linear(32, 8))

    def forward(self, x, c_noise, cond=None):
        b = x.shape[0]
        h = torch.cat([x.reshape(b, -1), c_noise[:, None], cond], dim=1)  # (B,12)
        return self.mlp(h).reshape(x.shape)  # (B,8)->(B,2,4)


@pytest.fixture(scope="module")
def ks():
    return _kdiffusion_sampling()


@pytest.fixture(scope="module")
def setup():
    torch.set_default_dtype(torch.float32)
    den = EDMPrecond(TinyNet(), sigma_data=0.25).double().eval()
    cond = torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigmas = karras_sigmas(12, 0.002, 160.0, 7.0, dtype=torch.float64)
    x = prior_sample((3, 2, 4), sigmas, torch.Generator().manual_seed(2), dtype=torch.float64)
    return den, cond, sigmas, x


def test_karras_schedule_equals_kdiffusion(ks):
    ours = karras_sigmas(18, 0.002, 160.0, 7.0)
    ref = ks.get_sigmas_karras(18, 0.002, 160.0, 7.0)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_heun_equals_kdiffusion(ks, setup):
    den, cond, sigmas, x = setup
    ours = sample_heun(den, x, sigmas, cond)
    ref = ks.sample_heun(den, x, sigmas, extra_args={"cond": cond}, disable=True)
    assert ours.abs().max() > 0.05  # a real sample, not a trivial zero
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_stochastic_heun_equals_kdiffusion(ks, setup):
    den, cond, sigmas, x = setup
    opts = dict(s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)
    torch.manual_seed(7)  # k-diffusion draws eps with torch.randn_like (global RNG), once per step
    ref = ks.sample_heun(den, x, sigmas, extra_args={"cond": cond}, disable=True, **opts)
    torch.manual_seed(7)
    ours = sample_heun_stochastic(den, x, sigmas, cond, noise_sampler=torch.randn_like, S_churn=40.0,
                                  S_tmin=0.05, S_tmax=50.0, S_noise=1.003)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    det = sample_heun(den, x, sigmas, cond)
    assert (ours - det).abs().max() > 1e-3  # the churn really changed the trajectory


def test_euler_equals_kdiffusion(ks, setup):
    den, cond, sigmas, x = setup
    ours = sample_euler(den, x, sigmas, cond)
    ref = ks.sample_euler(den, x, sigmas, extra_args={"cond": cond}, disable=True)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
