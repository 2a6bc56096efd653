"""Regression metrics: MSE, MAE, RMSE and inter-frame MSE.

Each is one line of torch; a library call would add a dependency and hide the reduction.
Inputs are numpy arrays or torch tensors of any float or integer dtype (computed in float64);
``pred`` and ``target`` have the same shape, the first dimension is the batch B.
``reduction="mean"`` averages every element (one number); ``"none"`` returns one value per
batch item (mean over all other dimensions), shape (B,).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from a2v.errors import InputError
from a2v.metrics._inputs import as_tensor, same_shape

Reduction = Literal["mean", "none"]


def _reduce(err: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return err.mean()
    if reduction == "none":
        if err.ndim == 0:
            return err.reshape(1)
        return err.reshape(err.shape[0], -1).mean(dim=1)  # (B,...)->(B,)
    raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def mse(pred: Any, target: Any, reduction: Reduction = "mean") -> torch.Tensor:
    """Mean squared error. pred, target: same shape (B,...); returns float64 () or (B,)."""
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    same_shape(p, t)
    return _reduce((p - t) ** 2, reduction)


def mae(pred: Any, target: Any, reduction: Reduction = "mean") -> torch.Tensor:
    """Mean absolute error. pred, target: same shape (B,...); returns float64 () or (B,)."""
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    same_shape(p, t)
    return _reduce((p - t).abs(), reduction)


def rmse(pred: Any, target: Any, reduction: Reduction = "mean") -> torch.Tensor:
    """Root mean squared error, sqrt(MSE). With ``"none"`` the root is taken per batch item."""
    return mse(pred, target, reduction).sqrt()


def inter_frame_mse(
    pred: Any, target: Any, frame_dim: int = 1, reduction: Reduction = "mean"
) -> torch.Tensor:
    """MSE between the frame-to-frame differences of ``pred`` and ``target``.

    d_x[f] = x[f+1] - x[f] along ``frame_dim``; returns mean((d_pred - d_target)**2): the
    pairwise inter-frame loss of the lip-sync paper, which compares motion, not position.

    pred, target: same shape, e.g. (B,F,D) landmarks/features or (B,F,C,H,W) frames, with
    F >= 2 frames along ``frame_dim`` (default 1, after the batch). Returns float64 () or (B,).
    """
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    same_shape(p, t)
    if p.ndim <= frame_dim or p.shape[frame_dim] < 2:
        raise InputError(
            f"inter_frame_mse needs at least 2 frames along dim {frame_dim}, got shape {tuple(p.shape)}"
        )
    dp = p.diff(dim=frame_dim)  # (B,F,...)->(B,F-1,...)
    dt = t.diff(dim=frame_dim)  # (B,F,...)->(B,F-1,...)
    return _reduce((dp - dt) ** 2, reduction)
