"""DDIM and DPM-Solver++ (via a2v.diffusion.ddpm) against the closed-form probability-flow ODE of a Gaussian.

For data x_0 ~ N(mu, s^2) the exact eps is eps(x_t) = sqrt(1-ab)(x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab)
and the ODE keeps z = (x_t - sqrt(ab) mu) / sqrt(ab s^2 + 1 - ab) constant (Song et al. 2021,
probability flow of a linear SDE), so the sampler's end point has a closed form: the error left
is the solver's alone. DPM-Solver++(2M) (Lu et al. 2022) must converge at second order, DDIM at first.
"""

from __future__ import annotations

import math

import torch

from a2v.diffusion.ddpm import ddpm_sample, make_scheduler

MU, S = 0.3, 0.5  # well conditioned: data with tiny variances (stiff near t=0) lower every solver's order
STEPS = (10, 20, 40)  # divisors of the 1000 training steps: no rounding of the timestep grid


def _errors(kind: str, steps: tuple[int, ...]) -> list[float]:
    sched = make_scheduler(kind, num_train_timesteps=1000, beta_schedule="linear")
    ab_all = sched.alphas_cumprod.double()

    def eps_fn(x, t, cond=None):  # x (B,1,1,1), t (B,)
        ab = ab_all[t].view(-1, 1, 1, 1)
        return ((1 - ab).sqrt() * (x.double() - ab.sqrt() * MU) / (ab * S**2 + 1 - ab)).float()

    x_T = torch.linspace(-2.5, 2.5, 64).view(-1, 1, 1, 1)  # (B,1,1,1)
    errs = []
    for n in steps:
        x = ddpm_sample(eps_fn, tuple(x_T.shape), sched, num_inference_steps=n, x_T=x_T, clip_range=None,
                        progress=False).double()
        ab_T = ab_all[sched.timesteps[0]]
        z = (x_T.double() - ab_T.sqrt() * MU) / (ab_T * S**2 + 1 - ab_T).sqrt()
        # end point: DPM-Solver++ goes to sigma = 0 (x_0 = mu + s z); DDIM to alphas_cumprod[0]
        ab_0 = torch.tensor(1.0, dtype=torch.float64) if kind == "dpmsolver++" else ab_all[0]
        exact = ab_0.sqrt() * MU + (ab_0 * S**2 + 1 - ab_0).sqrt() * z
        errs.append(float((x - exact).abs().max()))
    return errs


def _orders(errs: list[float]) -> list[float]:
    return [math.log2(a / b) for a, b in zip(errs, errs[1:], strict=False)]


def test_dpm_solver_pp_is_second_order():
    errs = _errors("dpmsolver++", STEPS)
    assert errs[-1] < 5e-3, errs  # measured: 0.24, 0.055, 0.0022
    assert min(_orders(errs)) > 1.6, (errs, _orders(errs))


def test_ddim_is_first_order_and_converges():
    errs = _errors("ddim", STEPS)
    assert errs[-1] < 0.1, errs  # measured: 0.31, 0.16, 0.085 (first order with a large constant)
    assert all(0.7 < p < 1.6 for p in _orders(errs)), (errs, _orders(errs))
