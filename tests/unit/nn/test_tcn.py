"""TCN block: shapes, receptive field (closed form vs measured impulse response), causality."""

from __future__ import annotations

import pytest
import torch

from a2v.nn.tcn import TCN, tcn_context, tcn_receptive_field


def _positive(model: torch.nn.Module) -> torch.nn.Module:
    """All weights/biases positive so every ReLU is active and every tap reaches the output."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.1 + 0.05)
    return model


def _measured_span(model: torch.nn.Module, c_in: int, t: int, t0: int) -> tuple[int, int]:
    """(first, last) input frames with a non-zero effect on output frame t0 (impulse response via grad)."""
    x = (torch.rand(1, c_in, t, dtype=torch.float64) + 0.1).requires_grad_(True)
    model(x)[0, :, t0].sum().backward()
    hit = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    return int(hit.min()), int(hit.max())


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("skip", [False, True])
def test_shapes(causal: bool, skip: bool) -> None:
    net = TCN(5, 8, 3, (1, 2, 4), causal=causal, skip_connections=skip, weight_norm=True, dropout=0.1)
    assert net(torch.randn(2, 5, 37)).shape == (2, 8, 37)
    assert net(torch.randn(1, 5, 1)).shape == (1, 8, 1)


def test_receptive_field_closed_form() -> None:
    assert tcn_receptive_field(3, (1, 2, 4, 8)) == 61  # 1 + 2*(3-1)*15
    assert tcn_receptive_field(3, (1, 2, 4, 8), convs_per_block=1) == 31
    assert tcn_receptive_field(2, (1, 2, 4, 8, 16, 32), convs_per_block=1) == 64  # WaveNet stack
    assert tcn_context(3, (1, 2, 4, 8)) == (30, 30)
    assert tcn_context(3, (1, 2), causal=True) == (12, 0)
    with pytest.raises(ValueError):
        tcn_receptive_field(0, (1,))


@pytest.mark.parametrize(
    ("kernel", "dilations", "convs", "causal"),
    [(3, (1, 2, 4, 8), 2, False), (3, (1, 2, 4), 1, True), (2, (1, 3), 2, False), (5, (2,), 2, True)],
)
def test_receptive_field_matches_impulse_response(kernel, dilations, convs, causal) -> None:
    net = _positive(TCN(3, 4, kernel, dilations, causal=causal, convs_per_block=convs).double())
    t, t0 = 160, 80
    first, last = _measured_span(net, 3, t, t0)
    past, future = net.context
    assert (first, last) == (t0 - past, t0 + future)
    assert last - first + 1 == net.receptive_field == tcn_receptive_field(kernel, dilations, convs)


def test_causal_ignores_future() -> None:
    torch.manual_seed(0)
    net = TCN(3, 6, 3, (1, 2, 4), causal=True).eval()
    x = torch.randn(1, 3, 50)
    y = net(x)
    x2 = x.clone()
    x2[..., 30:] = torch.randn(1, 3, 20)
    y2 = net(x2)
    torch.testing.assert_close(y2[..., :30], y[..., :30])
    assert not torch.allclose(y2[..., 30:], y[..., 30:])
