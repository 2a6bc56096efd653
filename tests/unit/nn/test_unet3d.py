"""Space-time U-Net: shapes, condition paths (per-frame FiLM, windowed cross-attention), errors."""

from __future__ import annotations

import pytest
import torch

from a2v.nn.unet3d import SpaceTimeAttention, UNet3D


def _tiny(**kw) -> UNet3D:
    torch.manual_seed(0)
    args = dict(in_channels=2, out_channels=1, channels=8, channel_mults=(1, 2), num_res_blocks=1,
                attn_levels=(1,), heads=2, groups=4)
    return UNet3D(**{**args, **kw})


def _unzero(m: torch.nn.Module) -> None:
    """Give the zero-initialised output layers random weights so every path contributes."""
    g = torch.Generator().manual_seed(3)
    for p in m.parameters():
        if p.ndim > 1 and torch.count_nonzero(p) == 0:
            p.data = torch.randn(p.shape, generator=g) * 0.1


def test_shapes_unconditional_and_errors() -> None:
    net = _tiny()
    x = torch.randn(2, 2, 3, 8, 8)
    out = net(x, torch.tensor([0.1, -0.5]))
    assert out.shape == (2, 1, 3, 8, 8)
    assert torch.count_nonzero(out) == 0  # zero-initialised output conv
    assert net(x, 0.3).shape == (2, 1, 3, 8, 8)  # scalar c_noise broadcasts
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.randn(1, 2, 3, 7, 8), torch.zeros(1))


def test_condition_changes_output_and_gradients_flow() -> None:
    net = _tiny(cond_dim=5)
    _unzero(net)
    x, cn = torch.randn(1, 2, 4, 8, 8), torch.zeros(1)
    cond = torch.randn(1, 4, 5, requires_grad=True)
    a = net(x, cn, cond)
    assert (a - net(x, cn, None)).abs().max() > 1e-4
    assert net(x, cn, torch.randn(1, 7, 5)).shape == a.shape  # T != F: cross-attention only
    a.square().mean().backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_cross_window_mask() -> None:
    att = SpaceTimeAttention(8, context_dim=4, heads=2, cross_window=1)
    ctx = torch.randn(2, 6, 4)
    _, m = att._frame_context(ctx, None, 6)
    m = m.reshape(2, 6, 6)[0]
    idx = torch.arange(6)
    torch.testing.assert_close(m, (idx[:, None] - idx[None]).abs() <= 1)  # T == F: +-1 frame
    _, m2 = att._frame_context(torch.randn(1, 12, 4), torch.ones(1, 12, dtype=torch.bool), 6)
    assert m2.shape == (6, 12) and bool(m2.any(1).all())  # T = 2F: every frame sees its own keys
