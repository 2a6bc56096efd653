"""MultiHeadAttention against a hand-written softmax attention; masks; sine embedding."""

from __future__ import annotations

import math

import torch

from a2v.nn.attention import MultiHeadAttention, sinusoidal_embedding


def _reference(m: MultiHeadAttention, x, ctx, mask):
    """softmax(q k^T / sqrt(d)) v per head (Vaswani et al. 2017, eq. 1), masked keys at -inf."""
    B, N, _ = x.shape
    h = m.norm(x)
    c = m.context_norm(ctx) if ctx is not None else h
    q = m.to_q(h).view(B, N, m.heads, m.head_dim).transpose(1, 2)
    k, v = m.to_kv(c).view(B, c.shape[1], 2, m.heads, m.head_dim).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / math.sqrt(m.head_dim)
    if mask is not None:
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, N, -1)
    return m.to_out(out)


def test_cross_attention_matches_reference_with_key_mask() -> None:
    torch.manual_seed(0)
    m = MultiHeadAttention(16, context_dim=12, heads=4).eval()
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 12)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out = m(x, ctx, mask)
    assert out.shape == (2, 5, 16)
    torch.testing.assert_close(out, _reference(m, x, ctx, mask), atol=1e-5, rtol=1e-5)
    ctx2 = ctx.clone()
    ctx2[1, 4:] = 100.0  # masked keys cannot change the result
    torch.testing.assert_close(m(x, ctx2, mask), out)


def test_self_attention_and_fully_masked_rows() -> None:
    torch.manual_seed(1)
    m = MultiHeadAttention(8, heads=2).eval()
    x = torch.randn(3, 4, 8)
    torch.testing.assert_close(m(x), _reference(m, x, None, None), atol=1e-5, rtol=1e-5)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0] = True
    out = m(x, None, mask)
    assert torch.isfinite(out).all()
    bias = m.to_out.bias
    torch.testing.assert_close(out[1:], bias.expand(2, 4, 8))  # no visible key: zero attention, then to_out
    zero = MultiHeadAttention(8, zero_init=True)
    assert torch.count_nonzero(zero(x)) == 0


def test_sinusoidal_embedding() -> None:
    e = sinusoidal_embedding(torch.tensor([0.0, 1.0, 2.0]), 6)
    assert e.shape == (3, 6)
    torch.testing.assert_close(e[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    freqs = torch.exp(-math.log(10000.0) * torch.arange(3) / 3)
    torch.testing.assert_close(e[2, 3:], torch.sin(2 * freqs))
    assert sinusoidal_embedding(torch.arange(2), 5).shape == (2, 5)
