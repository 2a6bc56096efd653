"""Momentum contrast parts: a FIFO queue of negative keys, the momentum (EMA) update, InfoNCE with a queue.

He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation Learning" (MoCo, CVPR):
keys come from a slowly moving copy of the query encoder, ``theta_k <- m theta_k + (1 - m) theta_q``
(eq. 2), and past keys are kept in a queue of K negatives (sec. 3.2) used by the InfoNCE loss
``L = -log exp(q.k+/tau) / (exp(q.k+/tau) + sum_{k- in queue} exp(q.k-/tau))`` (eq. 1).
BriVL (Huo et al. 2021, "WenLan", sec. 3.2) keeps one such queue per modality.

Hand-written (about 60 lines): no maintained library offers a checkpointable queue module;
the queue and its pointer are buffers, so they are saved and restored with the module's state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureQueue(nn.Module):
    """A ring buffer of ``size`` keys of ``dim`` features (FIFO: the oldest keys are overwritten first).

    Buffers: ``keys`` float32 (K,D), ``ptr`` int64 () = the slot the next key goes to,
    ``count`` int64 () = number of valid keys (<= K). Only valid keys are returned by :meth:`valid`,
    so a fresh queue holds no random negatives.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got {size}, {dim}")
        self.size, self.dim = int(size), int(dim)
        self.register_buffer("keys", torch.zeros(self.size, self.dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Append ``keys`` (B,D) in order; when the end of the buffer is reached writing wraps to slot 0.

        A batch larger than the queue keeps only its last ``size`` keys.
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"queue expects keys (B,{self.dim}), got {tuple(keys.shape)}")
        k = keys.detach().to(self.keys.dtype)[-self.size:]  # (B,D)->(min(B,K),D)
        n = k.shape[0]
        idx = (self.ptr + torch.arange(n, device=self.keys.device)) % self.size  # (n,) ring slots
        self.keys[idx] = k
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    def valid(self) -> torch.Tensor:
        """The valid keys (N,D), N = min(keys enqueued so far, K), oldest first."""
        n = int(self.count)
        if n < self.size:
            return self.keys[:n]  # (K,D)->(n,D)
        return torch.roll(self.keys, -int(self.ptr), 0)  # (K,D), oldest first


@torch.no_grad()
def momentum_update_(target: nn.Module, online: nn.Module, m: float) -> None:
    """``theta_t <- m * theta_t + (1 - m) * theta_o`` for every parameter pair (MoCo eq. 2), in place.

    Parameters shared by both modules (the same tensor object, e.g. a frozen backbone) are skipped;
    buffers are left alone (the networks here use LayerNorm/GroupNorm, no running statistics).
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {m}")
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        if pt is po:
            continue
        pt.mul_(m).add_(po.detach().to(pt.dtype), alpha=1.0 - m)


def info_nce_with_queue(q: torch.Tensor, k_pos: torch.Tensor, negatives: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """MoCo InfoNCE (eq. 1), mean over the batch.

    q: (B,D) queries; k_pos: (B,D) their positive keys; negatives: (N,D) queue keys (N may be 0).
    All are L2-normalised here. Returns a float scalar: mean_b -log softmax([q.k+, q.n_1..n_N] / tau)[0].
    """
    q = F.normalize(q, dim=-1)  # (B,D)
    k_pos = F.normalize(k_pos, dim=-1)  # (B,D)
    pos = (q * k_pos).sum(-1, keepdim=True)  # (B,D)->(B,1)
    if negatives.shape[0] > 0:
        neg = q @ F.normalize(negatives, dim=-1).to(q.dtype).T  # (B,D),(N,D)->(B,N)
        logits = torch.cat([pos, neg], 1) / temperature  # (B,1+N)
    else:
        logits = pos / temperature  # (B,1)
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # (B,) the positive is column 0
    return F.cross_entropy(logits, target)


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """CLIP-style symmetric in-batch InfoNCE (Radford et al. 2021, Fig. 3): pair i of ``a`` matches pair i of ``b``.

    a, b: (B,D), L2-normalised here. Returns ``(CE(a b^T / tau) + CE(b a^T / tau)) / 2``.
    """
    a = F.normalize(a, dim=-1)  # (B,D)
    b = F.normalize(b, dim=-1)  # (B,D)
    logits = a @ b.T / temperature  # (B,D),(B,D)->(B,B)
    target = torch.arange(a.shape[0], device=a.device)  # (B,)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
