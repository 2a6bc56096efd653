"""Multi-head attention over token sequences (self or cross) with a boolean key mask.

Vaswani et al. 2017, "Attention Is All You Need", eq. 1 (scaled dot-product attention) and
§3.2.2 (multi-head). The kernel is torch's ``scaled_dot_product_attention``; this module adds
separate query / key-value widths (cross-attention), a pre-norm and a boolean mask that is
either per key ``(B,L)`` or per query-key pair ``(B,N,L)``/``(1,N,L)``. Unlike
``torch.nn.MultiheadAttention`` it takes a True = attend mask and a query row whose keys are all
masked out returns zeros instead of NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiHeadAttention", "sinusoidal_embedding"]


def sinusoidal_embedding(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sine/cosine position embedding (Vaswani et al. 2017, §3.5).

    pos: float or int (...,) positions (frame indices, noise levels); returns float32 (..., dim)
    ``[cos(p w_0) .. cos(p w_{k-1}), sin(p w_0) .. sin(p w_{k-1})]`` with ``w_i = max_period^(-i/k)``,
    ``k = dim // 2`` (an odd ``dim`` gets a trailing zero).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    args = pos.float()[..., None] * freqs  # (...,)->(...,k)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (...,2k)
    if dim % 2:
        emb = F.pad(emb, (0, 1))  # (...,2k)->(...,dim)
    return emb


class MultiHeadAttention(nn.Module):
    """Pre-norm multi-head attention with an output projection (no residual: the caller adds it).

    ``forward(x (B,N,Dq), context (B,L,Dk) | None, mask bool (B,L) | (B,N,L) | (1,N,L) | None) -> (B,N,Dq)``.
    ``context=None`` is self-attention on ``x``. ``mask`` True = the key may be attended.
    """

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4, head_dim: int | None = None,
                 dropout: float = 0.0, zero_init: bool = False) -> None:
        super().__init__()
        head_dim = head_dim or max(dim // heads, 1)
        inner = heads * head_dim
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.norm = nn.LayerNorm(dim)
        self.context_norm = nn.LayerNorm(context_dim) if context_dim is not None else None
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        if zero_init:  # the block starts as the identity in a residual branch
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, _ = x.shape
        h = self.norm(x)
        c = h if context is None else (self.context_norm(context) if self.context_norm is not None else context)
        L = c.shape[1]
        q = self.to_q(h).view(B, N, self.heads, self.head_dim).transpose(1, 2)  # (B,N,Dq)->(B,h,N,d)
        k, v = self.to_kv(c).view(B, L, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B,L,Dk)->2x(B,h,L,d)
        attn_mask = None
        empty = None
        if mask is not None:
            m = mask.to(device=x.device, dtype=torch.bool)
            m = m[:, None, :] if m.dim() == 2 else m  # key mask (B,L)->(B,1,L)
            m = m.expand(B, N, L)  # (B|1,N|1,L)->(B,N,L)
            empty = ~m.any(dim=-1)  # (B,N) rows with no visible key
            m = m | empty[..., None]  # a fully masked row attends to all keys, then is zeroed below
            attn_mask = m[:, None]  # (B,N,L)->(B,1,N,L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)  # (B,h,N,d)
        out = out.transpose(1, 2).reshape(B, N, self.heads * self.head_dim)  # (B,h,N,d)->(B,N,h*d)
        if empty is not None and bool(empty.any()):
            out = out.masked_fill(empty[..., None], 0.0)
        return self.to_out(out)  # (B,N,h*d)->(B,N,Dq)
