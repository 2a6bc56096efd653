from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from a2v.nn.moco import FeatureQueue, info_nce_with_queue, momentum_update_, symmetric_info_nce


def _rows(start: int, n: int, dim: int = 2) -> torch.Tensor:
    """(n,dim) rows whose first column counts start, start+1, ... (to track FIFO order)."""
    x = torch.zeros(n, dim)
    x[:, 0] = torch.arange(start, start + n, dtype=torch.float32)
    return x


def test_queue_fills_then_wraps_fifo():
    q = FeatureQueue(5, 2)
    assert q.valid().shape == (0, 2)  # a fresh queue holds no (random) negatives
    q.enqueue(_rows(0, 3))
    assert q.valid()[:, 0].tolist() == [0, 1, 2] and int(q.ptr) == 3 and int(q.count) == 3
    q.enqueue(_rows(3, 4))  # 3 + 4 > 5: slots 3,4 then wrap to 0,1
    assert int(q.ptr) == 2 and int(q.count) == 5
    assert q.keys[:, 0].tolist() == [5, 6, 2, 3, 4]  # oldest keys 0,1 overwritten
    assert q.valid()[:, 0].tolist() == [2, 3, 4, 5, 6]  # oldest first
    q.enqueue(_rows(7, 1))
    assert q.valid()[:, 0].tolist() == [3, 4, 5, 6, 7]


def test_queue_batch_larger_than_queue_keeps_last_keys_and_state_dict_round_trip():
    q = FeatureQueue(4, 2)
    q.enqueue(_rows(0, 2))
    q.enqueue(_rows(10, 6))
    assert q.valid()[:, 0].tolist() == [12, 13, 14, 15]
    r = FeatureQueue(4, 2)
    r.load_state_dict(q.state_dict())  # ptr/count are buffers: a resumed run continues the same ring
    r.enqueue(_rows(20, 1))
    q.enqueue(_rows(20, 1))
    assert torch.equal(r.valid(), q.valid()) and r.valid()[:, 0].tolist() == [13, 14, 15, 20]
    with pytest.raises(ValueError):
        q.enqueue(torch.zeros(2, 3))


def test_momentum_update_closed_form_and_shared_parameters_skipped():
    torch.manual_seed(0)
    shared = nn.Linear(3, 3)
    online = nn.Sequential(shared, nn.Linear(3, 2))
    target = nn.Sequential(shared, nn.Linear(3, 2))
    t0 = {k: v.clone() for k, v in target.state_dict().items()}
    o = {k: v.clone() for k, v in online.state_dict().items()}
    m = 0.99
    momentum_update_(target, online, m)
    for k in ("1.weight", "1.bias"):  # theta_k <- m theta_k + (1-m) theta_q (MoCo eq. 2)
        torch.testing.assert_close(target.state_dict()[k], m * t0[k] + (1 - m) * o[k])
    assert torch.equal(target.state_dict()["0.weight"], t0["0.weight"])  # the shared layer is untouched
    for _ in range(49):  # n updates with a fixed online net: theta_k = theta_q + m^n (theta_k0 - theta_q)
        momentum_update_(target, online, m)
    expect = o["1.weight"] + m**50 * (t0["1.weight"] - o["1.weight"])
    torch.testing.assert_close(target[1].weight, expect, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError):
        momentum_update_(target, online, 1.5)


def _direct_info_nce(q, k, negs, tau):
    """-log exp(q.k/tau) / (exp(q.k/tau) + sum exp(q.n/tau)), per row, in float64 loops."""
    total = 0.0
    for i in range(q.shape[0]):
        qi = q[i].double() / q[i].double().norm()
        ki = k[i].double() / k[i].double().norm()
        pos = math.exp(float(qi @ ki) / tau)
        neg = sum(math.exp(float(qi @ (n.double() / n.double().norm())) / tau) for n in negs)
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def test_info_nce_with_queue_matches_direct_formula():
    g = torch.Generator().manual_seed(1)
    q, k, negs = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    got = info_nce_with_queue(q, k, negs, 0.07)
    assert got.item() == pytest.approx(_direct_info_nce(q, k, negs, 0.07), rel=1e-4)
    empty = info_nce_with_queue(q, k, negs[:0], 0.07)  # no negatives yet: softmax over one logit
    assert empty.item() == pytest.approx(0.0, abs=1e-6)


def test_symmetric_info_nce_matches_direct_formula():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    a2b = sum(_direct_info_nce(a[i:i + 1], b[i:i + 1], [b[j] for j in range(5) if j != i], 0.1) for i in range(5)) / 5
    b2a = sum(_direct_info_nce(b[i:i + 1], a[i:i + 1], [a[j] for j in range(5) if j != i], 0.1) for i in range(5)) / 5
    assert symmetric_info_nce(a, b, 0.1).item() == pytest.approx((a2b + b2a) / 2, rel=1e-4)
