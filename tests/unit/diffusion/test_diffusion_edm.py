"""EDM preconditioning and loss against closed forms (Karras et al. 2022, Table 1, App. B.6)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from a2v.diffusion.edm import (
    EDMLoss,
    EDMPrecond,
    augment_condition,
    edm_coefficients,
    edm_loss_weight,
    random_aug_sigma,
)

SD = 0.25


class ZeroNet(nn.Module):
    """F = 0: with Gaussian data N(0, sd^2 I) the EDM denoiser is then exactly the ideal one."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def forward(self, x, c_noise, cond=None, **kw):
        self.calls.append({"x": x, "c_noise": c_noise, "cond": cond, **kw})
        return torch.zeros_like(x)


class ConstNet(nn.Module):
    def forward(self, x, c_noise, cond=None):
        return torch.ones_like(x)


def test_coefficients_table1() -> None:
    s = torch.tensor([0.002, 0.1, 0.25, 1.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(s, SD)
    for i, si in enumerate(s.tolist()):
        assert c_skip[i].item() == pytest.approx(SD**2 / (si**2 + SD**2))
        assert c_out[i].item() == pytest.approx(si * SD / math.sqrt(si**2 + SD**2))
        assert c_in[i].item() == pytest.approx(1 / math.sqrt(si**2 + SD**2))
        assert c_noise[i].item() == pytest.approx(math.log(si) / 4)
    # loss weight = 1 / c_out^2 (EDM eq. 8 / Table 1)
    torch.testing.assert_close(edm_loss_weight(s, SD), 1 / c_out**2)
    torch.testing.assert_close(edm_loss_weight(s, SD), (s**2 + SD**2) / (s * SD) ** 2)


@pytest.mark.parametrize("sigma", [0.01, 0.25, 3.0, 80.0])
def test_unit_variance_input_and_target(sigma: float) -> None:
    """Var(c_in (y+n)) = 1 and Var(F_target) = 1 for y ~ N(0, sd^2), n ~ N(0, sigma^2) (EDM App. B.6)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200_000, generator=g, dtype=torch.float64) * SD
    n = torch.randn(200_000, generator=g, dtype=torch.float64) * sigma
    c_skip, c_out, c_in, _ = edm_coefficients(torch.tensor(sigma, dtype=torch.float64), SD)
    assert (c_in * (y + n)).var().item() == pytest.approx(1.0, rel=0.02)
    target = (y - c_skip * (y + n)) / c_out  # EDM eq. 8 effective training target
    assert target.var().item() == pytest.approx(1.0, rel=0.02)


def test_zero_net_is_ideal_gaussian_denoiser_and_net_inputs() -> None:
    net = ZeroNet()
    pre = EDMPrecond(net, sigma_data=SD)
    x = torch.randn(3, 2, 5, dtype=torch.float64)
    sigma = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    d = pre(x, sigma, cond="c", extra=7)
    ideal = x * SD**2 / (SD**2 + sigma.reshape(3, 1, 1) ** 2)  # D*(x; s) for N(0, sd^2 I)
    torch.testing.assert_close(d, ideal)
    call = net.calls[-1]
    torch.testing.assert_close(call["x"], x / (sigma.reshape(3, 1, 1) ** 2 + SD**2).sqrt())
    torch.testing.assert_close(call["c_noise"], sigma.log() / 4)
    assert call["c_noise"].shape == (3,) and call["cond"] == "c" and call["extra"] == 7
    # scalar sigma broadcasts over the batch
    torch.testing.assert_close(pre(x, 1.0), x * SD**2 / (SD**2 + 1.0))


def test_precond_output_formula_and_errors() -> None:
    pre = EDMPrecond(ConstNet(), sigma_data=SD)
    x = torch.randn(2, 4)
    d = pre(x, torch.tensor([0.5, 2.0]))
    s = torch.tensor([[0.5], [2.0]])
    torch.testing.assert_close(d, SD**2 / (s**2 + SD**2) * x + s * SD / (s**2 + SD**2).sqrt())
    with pytest.raises(ValueError, match="3 values for a batch of 2"):
        pre(x, torch.ones(3))

    class BadNet(nn.Module):
        def forward(self, x, c_noise, cond=None):
            return x[:, :2]

    with pytest.raises(ValueError, match="network output shape"):
        EDMPrecond(BadNet())(x, 1.0)
    with pytest.raises(ValueError, match="learn_null_cond"):
        EDMPrecond(ConstNet(), learn_null_cond=True)


def test_null_cond_storage() -> None:
    learned = EDMPrecond(ZeroNet(), null_cond=torch.zeros(4), learn_null_cond=True)
    assert any(n == "null_cond" for n, _ in learned.named_parameters())
    fixed = EDMPrecond(ZeroNet(), null_cond=torch.zeros(4))
    assert "null_cond" in dict(fixed.named_buffers()) and "null_cond" in fixed.state_dict()


def test_loss_expectation_is_one_for_ideal_denoiser() -> None:
    """E[lambda(s) ||D*(y+n) - y||^2] = lambda(s) * sd^2 s^2 / (sd^2 + s^2) = 1 for every s."""
    pre = EDMPrecond(ZeroNet(), sigma_data=SD)
    loss = EDMLoss(sigma_data=SD, cond_dropout_prob=0.0)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(4096, 64, generator=g, dtype=torch.float64) * SD
    per = loss(pre, y, generator=g, reduction="none")
    assert per.shape == (4096,)
    assert per.mean().item() == pytest.approx(1.0, rel=0.02)
    fixed = loss(pre, y[:512], generator=g, sigma=torch.full((512,), 5.0, dtype=torch.float64))
    assert fixed.ndim == 0 and fixed.item() == pytest.approx(1.0, rel=0.03)


def test_loss_matches_manual_computation() -> None:
    pre = EDMPrecond(ConstNet(), sigma_data=SD)
    loss = EDMLoss(P_mean=-1.2, P_std=1.2, sigma_data=SD, cond_dropout_prob=0.0)
    y = torch.randn(6, 3, 4)
    per = loss(pre, y, generator=torch.Generator().manual_seed(5), reduction="none")
    g = torch.Generator().manual_seed(5)  # same draw order: ln-sigma (B,), then noise like y
    sigma = (torch.randn(6, generator=g) * 1.2 - 1.2).exp().reshape(6, 1, 1)
    n = torch.randn(y.shape, generator=g) * sigma
    d = SD**2 / (sigma**2 + SD**2) * (y + n) + sigma * SD / (sigma**2 + SD**2).sqrt()
    w = (sigma**2 + SD**2) / (sigma * SD) ** 2
    torch.testing.assert_close(per, (w * (d - y) ** 2).mean(dim=(1, 2)))


@pytest.mark.parametrize("cond_shape,null_shape", [((64, 5), (5,)), ((64, 7, 5), (1, 5)), ((64, 7, 5), (5,))])
@pytest.mark.parametrize("prob", [0.0, 0.3, 1.0])
def test_cond_dropout_replaces_rows_with_null(cond_shape, null_shape, prob: float) -> None:
    net = ZeroNet()
    null = torch.full(null_shape, -9.0)
    pre = EDMPrecond(net, sigma_data=SD, null_cond=null, learn_null_cond=True)
    cond = torch.rand(cond_shape) + 1.0
    EDMLoss(sigma_data=SD, cond_dropout_prob=prob)(pre, torch.randn(64, 3), cond, torch.Generator().manual_seed(0))
    seen = net.calls[-1]["cond"]
    assert seen.shape == cond.shape
    rows = seen.reshape(64, -1)
    dropped = (rows == -9.0).all(dim=1)
    kept = (rows == cond.reshape(64, -1)).all(dim=1)
    assert bool((dropped ^ kept).all())  # each row is either the condition or the null, untouched
    frac = dropped.float().mean().item()
    if prob in (0.0, 1.0):
        assert frac == prob
    else:
        assert 0.1 < frac < 0.5


def test_cond_dropout_gradient_reaches_learned_null() -> None:
    class LinNet(nn.Module):
        def forward(self, x, c_noise, cond=None):
            return x * cond.sum(dim=1, keepdim=True)

    pre = EDMPrecond(LinNet(), sigma_data=SD, null_cond=torch.zeros(3), learn_null_cond=True)
    EDMLoss(sigma_data=SD, cond_dropout_prob=1.0)(pre, torch.randn(8, 2), torch.randn(8, 3)).backward()
    assert pre.null_cond.grad is not None and pre.null_cond.grad.abs().sum() > 0


def test_augment_condition() -> None:
    x = torch.zeros(20_000, 3)
    g = torch.Generator().manual_seed(0)
    sig = torch.tensor([0.0] * 10_000 + [0.5] * 10_000)
    noised, level = augment_condition(x, sig, g)
    assert noised.shape == x.shape and level.shape == (20_000,)
    assert noised[:10_000].abs().max().item() == 0.0  # sigma_aug = 0 leaves the condition clean
    assert noised[10_000:].std().item() == pytest.approx(0.5, rel=0.03)
    torch.testing.assert_close(level[10_000:], torch.full((10_000,), math.log(0.5) / 4))
    torch.testing.assert_close(level[:10_000], torch.full((10_000,), math.log(0.002) / 4))
    _, lv = augment_condition(torch.zeros(2, 4, 4), 0.1)  # float level broadcasts
    torch.testing.assert_close(lv, torch.full((2,), math.log(0.1) / 4))
    r = random_aug_sigma(1000, 0.3, generator=torch.Generator().manual_seed(0))
    assert r.shape == (1000,) and 0 <= r.min() and r.max() <= 0.3 and r.mean().item() == pytest.approx(0.15, rel=0.1)
