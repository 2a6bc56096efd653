"""Classifier-free guidance: null condition shapes, dropout mask, guided mix (Ho & Salimans 2022)."""

from __future__ import annotations

import pytest
import torch

from a2v.diffusion.guidance import (
    cfg_combine,
    drop_condition,
    guided_denoiser,
    null_like,
    random_drop_mask,
    scale_from_w,
)


def lin_denoiser(x, sigma, cond):
    """D = x * (1 + mean(cond)) per sample (linear in cond: the guided mix is checkable)."""
    m = cond.reshape(cond.shape[0], -1).mean(1)
    return x * (1 + m.reshape(-1, *([1] * (x.ndim - 1))))


def test_null_like_shapes() -> None:
    cond = torch.randn(4, 7, 5)
    assert torch.equal(null_like(cond), torch.zeros_like(cond))
    assert torch.equal(null_like(cond, torch.ones(5)), torch.ones(4, 7, 5))
    assert null_like(cond, torch.ones(1, 5)).shape == (4, 7, 5)
    with pytest.raises(ValueError, match="does not broadcast"):
        null_like(cond, torch.ones(3))


def test_drop_mask_rate_and_drop() -> None:
    m = random_drop_mask(20000, 0.1, generator=torch.Generator().manual_seed(0))
    assert m.dtype == torch.bool and m.float().mean().item() == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError):
        random_drop_mask(3, 1.5)
    cond = torch.ones(3, 2)
    out = drop_condition(cond, torch.tensor([True, False, True]), torch.full((2,), 5.0))
    assert out.tolist() == [[5.0, 5.0], [1.0, 1.0], [5.0, 5.0]]


@pytest.mark.parametrize("batched", [False, True])
def test_guided_denoiser_mix(batched: bool) -> None:
    x, sigma = torch.randn(3, 4), torch.ones(3)
    cond = torch.full((3, 2), 0.5)
    d_c, d_u = lin_denoiser(x, sigma, cond), lin_denoiser(x, sigma, torch.zeros_like(cond))
    for scale in (0.0, 1.0, 3.0):
        got = guided_denoiser(lin_denoiser, cond, scale, batched=batched)(x, sigma)
        torch.testing.assert_close(got, d_u + scale * (d_c - d_u))
    torch.testing.assert_close(cfg_combine(d_u, d_c, scale_from_w(2.0)), 3 * d_c - 2 * d_u)


def test_guided_denoiser_call_counts() -> None:
    calls = []

    def den(x, sigma, cond):
        calls.append(x.shape[0])
        return x

    x = torch.zeros(2, 3)
    guided_denoiser(den, torch.ones(2, 1), 1.0)(x, torch.ones(2))
    guided_denoiser(den, torch.ones(2, 1), 2.0)(x, torch.ones(2))
    guided_denoiser(den, torch.ones(2, 1), 2.0, batched=True)(x, torch.ones(2))
    assert calls == [2, 2, 2, 4]
