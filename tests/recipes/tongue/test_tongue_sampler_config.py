"""The configs' samplers: the paper config samples with EDM's stochastic sampler; neither config gives a
degenerate sample (checked on N(0, sigma_data^2) data, whose exact denoiser is known)."""

from __future__ import annotations

import pytest
import torch

from a2v.config import load_config
from a2v.recipes.tongue.config import SamplerConfig, TongueConfig
from a2v.recipes.tongue.sample import make_sigmas, run_sampler


def _output_std_ratio(cfg: TongueConfig, n: int = 4000) -> float:
    """std of samples / sigma_data when the data are N(0, sigma_data^2) (exact denoiser): 1 for a good sampler."""
    sd = cfg.edm.sigma_data

    def den(x, sigma, cond=None):
        return x * sd**2 / (sd**2 + sigma.reshape(-1, 1) ** 2)  # exact D(x; sigma) of N(0, sd^2)

    sig = make_sigmas(cfg.sampler, cfg.edm)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, generator=g) * sig[0]  # (N,1)
    return float(run_sampler(cfg.sampler, den, x, sig, generator=g).std()) / sd


def test_paper_config_uses_the_stochastic_edm_sampler() -> None:
    s = load_config(TongueConfig, "configs/tongue/paper.yaml", []).sampler
    assert s.name == "heun_sde" and s.S_churn > 0
    assert (s.S_churn, s.S_tmin, s.S_tmax, s.S_noise) == (40.0, 0.05, 50.0, 1.003)  # EDM Table 5 values
    assert SamplerConfig() == s  # the dataclass defaults are the paper config's


@pytest.mark.parametrize("path", ["configs/tongue/paper.yaml", "configs/tongue/tiny.yaml"])
def test_config_sampler_is_not_degenerate(path: str) -> None:
    cfg = load_config(TongueConfig, path, [])
    assert not (cfg.sampler.name.startswith("heun") and cfg.sampler.steps < 16)
    assert abs(_output_std_ratio(cfg) - 1) < 0.08


def test_four_heun_steps_are_degenerate() -> None:
    """What the tiny config used to do: the check above catches it."""
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml", ["sampler.steps=4"])
    assert _output_std_ratio(cfg) > 2.0
