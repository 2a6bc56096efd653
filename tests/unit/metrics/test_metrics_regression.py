"""Regression metrics against closed forms and torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.errors import InputError
from a2v.metrics import inter_frame_mse, mae, mse, rmse


def test_constant_error_closed_form():
    target = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0))
    pred = target + 0.25
    assert float(mse(pred, target)) == pytest.approx(0.0625)
    assert float(mae(pred, target)) == pytest.approx(0.25)
    assert float(rmse(pred, target)) == pytest.approx(0.25)


def test_matches_torchmetrics_and_numpy_input():
    from torchmetrics.functional import mean_absolute_error, mean_squared_error

    g = np.random.default_rng(1)
    p, t = g.normal(size=(6, 7)).astype(np.float32), g.normal(size=(6, 7)).astype(np.float32)
    tp, tt = torch.from_numpy(p), torch.from_numpy(t)
    assert float(mse(p, t)) == pytest.approx(float(mean_squared_error(tp, tt)), rel=1e-6)
    assert float(mae(p, t)) == pytest.approx(float(mean_absolute_error(tp, tt)), rel=1e-6)
    assert float(rmse(p, t)) == pytest.approx(float(mean_squared_error(tp, tt, squared=False)), rel=1e-6)


def test_per_item_reduction():
    target = torch.zeros(2, 3)
    pred = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    np.testing.assert_allclose(mse(pred, target, reduction="none").numpy(), [1.0, 4.0 / 3.0])
    np.testing.assert_allclose(rmse(pred, target, reduction="none").numpy(), [1.0, np.sqrt(4.0 / 3.0)])


def test_inter_frame_mse_closed_form():
    # pred moves by +1 per frame, target by +3 per frame: every difference is off by 2 -> 4.
    f = torch.arange(5, dtype=torch.float64)
    pred = f[None, :, None].expand(2, 5, 3)  # (B,F,D)
    target = 3 * f[None, :, None].expand(2, 5, 3) + 7.0
    assert float(inter_frame_mse(pred, target)) == pytest.approx(4.0)
    # A constant offset has no motion error at all, while plain MSE sees it.
    assert float(inter_frame_mse(pred + 10.0, pred)) == pytest.approx(0.0)
    assert float(mse(pred + 10.0, pred)) == pytest.approx(100.0)


def test_inter_frame_mse_random_against_loop():
    g = torch.Generator().manual_seed(2)
    p, t = torch.randn(2, 4, 3, 5, 5, generator=g), torch.randn(2, 4, 3, 5, 5, generator=g)  # (B,F,C,H,W)
    ref = np.mean(
        [((p[:, i + 1] - p[:, i]) - (t[:, i + 1] - t[:, i])).pow(2).mean().item() for i in range(3)]
    )
    assert float(inter_frame_mse(p, t)) == pytest.approx(ref, rel=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="same shape"):
        mse(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(InputError, match="at least 2 frames"):
        inter_frame_mse(torch.zeros(2, 1, 3), torch.zeros(2, 1, 3))
    with pytest.raises(InputError, match="empty"):
        mae(np.zeros((0, 3)), np.zeros((0, 3)))
