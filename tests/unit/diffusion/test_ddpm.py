"""DDPM: cosine schedule vs the closed form, q_sample moments, loss, CFG numerics, samplers."""

from __future__ import annotations

import math

import pytest
import torch

from a2v.diffusion.ddpm import (
    cosine_alphas_cumprod,
    ddpm_sample,
    ddpm_training_loss,
    guided_eps,
    make_scheduler,
    q_sample,
)


def test_cosine_schedule_matches_nichol_dhariwal_closed_form():
    sched = make_scheduler("ancestral", num_train_timesteps=2000)
    ref = cosine_alphas_cumprod(2000)  # (T,)
    got = sched.alphas_cumprod.double()
    # without clipping, abar(t) = f(t)/f(0) exactly
    t = torch.arange(1, 2001, dtype=torch.float64) / 2000
    f = lambda u: torch.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    unclipped = f(t) / f(torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(got[:1990], unclipped[:1990].float().double(), rtol=1e-4, atol=1e-7)
    assert torch.allclose(got, ref.float().double(), rtol=1e-4, atol=1e-7)  # with beta clipping at 0.999
    assert got[0] > 0.9999 and got[-1] < 1e-6
    assert torch.all(got[1:] < got[:-1])


def test_q_sample_moments():
    sched = make_scheduler("ancestral", num_train_timesteps=100)
    x0 = torch.full((20000, 1), 0.7)
    t = torch.full((20000,), 40, dtype=torch.long)
    x_t = q_sample(sched, x0, t, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
    ab = float(sched.alphas_cumprod[40])
    assert x_t.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.02)
    assert x_t.var().item() == pytest.approx(1 - ab, rel=0.05)


def test_loss_is_zero_for_an_oracle_and_dropout_uses_null():
    sched = make_scheduler("ancestral", num_train_timesteps=50)
    x0 = torch.randn(8, 3, 4, 4)
    noise = torch.randn_like(x0)
    seen = {}

    def oracle(x_t, t, c):
        seen["c"] = c
        return noise

    loss = ddpm_training_loss(oracle, x0, torch.ones(8, 5), sched, cond_dropout_prob=1.0, noise=noise)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.all(seen["c"] == 0)  # all conditions replaced by the zeros null
    oracle.null_cond = torch.full((5,), 3.0)
    ddpm_training_loss(oracle, x0, torch.ones(8, 5), sched, cond_dropout_prob=1.0, noise=noise)
    assert torch.all(seen["c"] == 3.0)
    ddpm_training_loss(oracle, x0, torch.ones(8, 5), sched, cond_dropout_prob=0.0, noise=noise)
    assert torch.all(seen["c"] == 1.0)
    per = ddpm_training_loss(lambda x, t, c: torch.zeros_like(x), x0, None, sched, noise=noise, reduction="none")
    assert torch.allclose(per, noise.pow(2).flatten(1).mean(1))


def test_cfg_combination_numerics():
    def eps_fn(x, t, c):
        return x * c[:, :1, None, None]  # linear in the condition

    x = torch.randn(2, 1, 3, 3)
    t = torch.zeros(2, dtype=torch.long)
    c = torch.tensor([[2.0], [5.0]])
    null = torch.tensor([0.5])
    for w in (0.0, 1.0, 4.0):
        want = (1 + w) * x * c[:, :, None, None] - w * x * 0.5
        for batched in (True, False):
            got = guided_eps(eps_fn, x, t, c, w, null_cond=null, batched=batched)
            assert torch.allclose(got, want, atol=1e-6)


def _gaussian_eps(mu: float, var: float, sched):
    """Exact eps of data ~ N(mu, var): the ideal denoiser in closed form."""

    def eps_fn(x, t, c):
        ab = sched.alphas_cumprod.to(x.device)[t].view(-1, 1, 1, 1)
        m = ab.sqrt() * mu
        v = ab * var + (1 - ab)
        return (x - m) * (1 - ab).sqrt() / v  # -sqrt(1-ab) * score

    return eps_fn


@pytest.mark.parametrize("kind,steps", [("ancestral", None), ("ddim", 25), ("dpmsolver++", 25)])
def test_samplers_recover_a_gaussian(kind, steps):
    sched = make_scheduler(kind, num_train_timesteps=200)
    eps_fn = _gaussian_eps(0.3, 0.04, sched)
    g = torch.Generator().manual_seed(0)
    x = ddpm_sample(eps_fn, (512, 1, 2, 2), sched, num_inference_steps=steps, generator=g, progress=False)
    assert x.shape == (512, 1, 2, 2)
    assert x.mean().item() == pytest.approx(0.3, abs=0.03)
    assert x.std().item() == pytest.approx(0.2, abs=0.04)


def test_guidance_moves_samples_toward_the_condition():
    sched = make_scheduler("ddim", num_train_timesteps=200)

    def eps_fn(x, t, c):  # conditional data N(c, 0.01), unconditional N(0, 0.01)
        mu = c[:, 0].view(-1, 1, 1, 1)
        ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * mu) * (1 - ab).sqrt() / (ab * 0.01 + 1 - ab)

    c = torch.full((64, 1), 0.5)
    means = []
    for w in (0.0, 2.0):
        g = torch.Generator().manual_seed(1)
        x = ddpm_sample(eps_fn, (64, 1, 1, 1), sched, cond=c, num_inference_steps=20, w=w, generator=g,
                        clip_range=None, progress=False)
        means.append(x.mean().item())
    assert means[0] == pytest.approx(0.5, abs=0.05)
    assert means[1] > means[0] + 0.2  # extrapolated past the condition


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")


@pytest.mark.parametrize("kind", ["ancestral", "ddim", "dpmsolver++"])
def test_clip_sample_keeps_predicted_x0_in_range(kind):
    sched = make_scheduler(kind, num_train_timesteps=50, clip_sample=True)

    def wild(x, t, c):  # predicts x0 far outside [-1, 1]
        ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * 5.0) / (1 - ab).sqrt()

    steps = None if kind == "ancestral" else 10
    x = ddpm_sample(wild, (4, 1, 2, 2), sched, num_inference_steps=steps, clip_range=None, progress=False,
                    generator=torch.Generator().manual_seed(0))
    assert x.abs().max().item() < 2.0  # x0 clamped; DDIM adds back a little of the (wild) eps at the last step
    free = make_scheduler(kind, num_train_timesteps=50)
    y = ddpm_sample(wild, (4, 1, 2, 2), free, num_inference_steps=steps, clip_range=None, progress=False,
                    generator=torch.Generator().manual_seed(0))
    assert y.mean().item() > 3.0
