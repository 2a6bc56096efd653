"""EMA against its closed form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from a2v.train import EMA


def _seq(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, 2, generator=g) for _ in range(n + 1)]  # theta_0..theta_n, each (3,2)


def _set(model: nn.Linear, w: torch.Tensor) -> None:
    with torch.no_grad():
        model.weight.copy_(w)


def test_constant_decay_matches_closed_form():
    thetas, d, t = _seq(7), 0.8, 7
    model = nn.Linear(2, 3, bias=False)
    _set(model, thetas[0])
    ema = EMA(model, d)
    for k in range(1, t + 1):
        _set(model, thetas[k])
        ema.update(model)
    closed = d**t * thetas[0] + (1 - d) * sum(d ** (t - k) * thetas[k] for k in range(1, t + 1))
    torch.testing.assert_close(ema.module.weight, closed, rtol=1e-6, atol=1e-6)
    assert ema.num_updates == t


def test_warmup_decay_matches_product_form():
    thetas, t = _seq(5), 5
    model = nn.Linear(2, 3, bias=False)
    _set(model, thetas[0])
    ema = EMA(model, 0.99, warmup=True)
    ds = [min(0.99, (1 + k) / (10 + k)) for k in range(1, t + 1)]  # d_1..d_t
    assert [ema.decay_at(k) for k in range(1, t + 1)] == ds
    for k in range(1, t + 1):
        _set(model, thetas[k])
        ema.update(model)
    prod = lambda a: torch.tensor(ds[a:]).prod().item()  # noqa: E731  prod of d_{a+1}..d_t
    closed = prod(0) * thetas[0] + sum((1 - ds[k - 1]) * prod(k) * thetas[k] for k in range(1, t + 1))
    torch.testing.assert_close(ema.module.weight, closed, rtol=1e-6, atol=1e-6)


def test_buffers_copy_to_and_no_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, 0.5)
    model(torch.randn(4, 2))  # (4,2): updates BN running stats and num_batches_tracked
    ema.update(model)
    bn_e, bn_m = ema.module[1], model[1]
    assert bn_e.num_batches_tracked.item() == bn_m.num_batches_tracked.item() == 1  # integer buffer copied
    torch.testing.assert_close(bn_e.running_mean, 0.5 * bn_m.running_mean)  # float buffer averaged from 0
    assert not any(p.requires_grad for p in ema.parameters())
    other = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema.copy_to(other)
    assert torch.equal(other[0].weight, ema.module[0].weight)
    with pytest.raises(ValueError):
        EMA(model, 1.0)
