"""Cross-modal retrieval metrics: cosine similarity matrix, ranks, recall@K, median rank.

Queries are rows (e.g. audio clips), candidates are columns (e.g. images). The correct
candidate of query i is ``targets[i]`` (default: i, for paired (N,D) embeddings).
Ties are broken pessimistically, so results never depend on the order of the candidates:
rank = 1 + number of other candidates scoring >= the correct one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from a2v.errors import InputError
from a2v.metrics._inputs import as_tensor


def cosine_similarity_matrix(queries: Any, candidates: Any, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every query with every candidate.

    queries: (N,D), candidates: (M,D); numpy or torch, any float dtype.
    Returns float64 (N,M) in [-1, 1]. Zero vectors get similarity 0.
    """
    q, c = as_tensor(queries, "queries"), as_tensor(candidates, "candidates")
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise InputError(
            f"expected queries (N,D) and candidates (M,D), got {tuple(q.shape)} and {tuple(c.shape)}"
        )
    q = q / q.norm(dim=1, keepdim=True).clamp_min(eps)  # (N,D)
    c = c / c.norm(dim=1, keepdim=True).clamp_min(eps)  # (M,D)
    return q @ c.T  # (N,D),(M,D)->(N,M)


def _targets(sim: torch.Tensor, targets: Any | None) -> torch.Tensor:
    n, m = sim.shape
    if targets is None:
        if n > m:
            raise InputError(
                f"default targets pair query i with candidate i: need N <= M, got sim {tuple(sim.shape)}"
            )
        return torch.arange(n, device=sim.device)
    t = as_tensor(targets, "targets", torch.long).to(sim.device).reshape(-1)  # (N,)
    if t.numel() != n:
        raise InputError(f"targets must have one index per query ({n}), got {t.numel()}")
    if int(t.min()) < 0 or int(t.max()) >= m:
        raise InputError(
            f"targets must index the {m} candidates, got values in [{int(t.min())}, {int(t.max())}]"
        )
    return t


def retrieval_ranks(sim: Any, targets: Any | None = None) -> torch.Tensor:
    """1-based rank of the correct candidate for each query.

    sim: (N,M) similarity, higher = more similar (numpy or torch); targets: (N,) int indices into
    the M candidates or None (query i <-> candidate i). Returns int64 (N,) in [1, M].
    NaN similarities raise InputError.
    """
    s = as_tensor(sim, "sim")
    if s.ndim != 2:
        raise InputError(f"sim must be a (N,M) matrix, got shape {tuple(s.shape)}")
    if torch.isnan(s).any():
        raise InputError(f"sim contains {int(torch.isnan(s).sum())} NaN values")
    t = _targets(s, targets)  # (N,)
    correct = s.gather(1, t[:, None])  # (N,M)->(N,1)
    at_least = (s >= correct).sum(dim=1)  # (N,M)->(N,), counts the correct one itself
    return at_least.to(torch.long)


def recall_at_k(sim: Any, ks: Sequence[int] = (1, 5, 10), targets: Any | None = None) -> dict[int, float]:
    """Fraction of queries whose correct candidate is ranked within the top K, for each K.

    sim: (N,M) similarity; targets as in :func:`retrieval_ranks`. Returns {K: recall in [0,1]}.
    """
    ranks = retrieval_ranks(sim, targets)  # (N,)
    out = {}
    for k in ks:
        if k < 1:
            raise InputError(f"K must be >= 1, got {k}")
        out[int(k)] = float((ranks <= k).double().mean())
    return out


def median_rank(sim: Any, targets: Any | None = None) -> float:
    """Median of the 1-based ranks (mean of the two middle ranks for even N, as numpy); lower is better."""
    return float(retrieval_ranks(sim, targets).double().quantile(0.5))
