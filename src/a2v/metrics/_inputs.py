"""Input conversion shared by the metrics: numpy or torch in, float64 torch out, layouts checked.

Accepted layouts are stated by each metric; this module only converts explicitly and raises
:class:`a2v.errors.InputError` (one line) on a wrong dtype, shape or range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from a2v.errors import InputError


def as_tensor(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return ``x`` (numpy array, torch tensor or nested list) as a torch tensor of ``dtype``.

    The tensor stays on its device; numpy input lands on the CPU.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray | list | tuple | float | int):
        t = torch.as_tensor(np.asarray(x))
    else:
        raise InputError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if t.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(t.shape)})")
    return t.to(dtype)


def same_shape(pred: torch.Tensor, target: torch.Tensor, what: str = "pred and target") -> None:
    """Raise InputError unless both tensors have the same shape."""
    if pred.shape != target.shape:
        raise InputError(
            f"{what} must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def images_bchw(x: Any, name: str, data_range: float) -> torch.Tensor:
    """Images as float64 (B,C,H,W) in their stated range.

    Accepts float (B,C,H,W) with values in ``[0, data_range]`` (usually ``data_range=1``), or
    uint8 (B,H,W,C) with values in [0, 255], which needs ``data_range=255`` (values are kept
    on the 0..255 scale; only the layout changes). C is 1 or 3.
    """
    is_uint8 = (isinstance(x, torch.Tensor) and x.dtype == torch.uint8) or (
        isinstance(x, np.ndarray) and x.dtype == np.uint8
    )
    t = as_tensor(x, name)
    if t.ndim != 4:
        raise InputError(
            f"{name}: expected 4 dims (B,C,H,W) float or (B,H,W,C) uint8, got shape {tuple(t.shape)}"
        )
    if is_uint8:
        if data_range != 255:
            raise InputError(f"{name} is uint8 (0..255): pass data_range=255, not {data_range}")
        if t.shape[-1] not in (1, 3):
            raise InputError(f"{name}: uint8 images must be (B,H,W,C) with C in (1,3), got {tuple(t.shape)}")
        t = t.permute(0, 3, 1, 2)  # (B,H,W,C)->(B,C,H,W)
    elif t.shape[1] not in (1, 3):
        raise InputError(f"{name}: float images must be (B,C,H,W) with C in (1,3), got {tuple(t.shape)}")
    return t


def images_float01(x: Any, name: str) -> torch.Tensor:
    """Images as float32 (B,3,H,W) in [0, 1], for the learned metrics (LPIPS, FID).

    Accepts float (B,3,H,W) in [0, 1] or uint8 (B,H,W,3) in [0, 255] (divided by 255).
    """
    is_uint8 = (isinstance(x, torch.Tensor) and x.dtype == torch.uint8) or (
        isinstance(x, np.ndarray) and x.dtype == np.uint8
    )
    t = as_tensor(x, name, torch.float32)
    if t.ndim != 4:
        raise InputError(f"{name}: expected (B,3,H,W) float or (B,H,W,3) uint8, got shape {tuple(t.shape)}")
    if is_uint8:
        if t.shape[-1] != 3:
            raise InputError(f"{name}: uint8 images must be (B,H,W,3), got {tuple(t.shape)}")
        t = t.permute(0, 3, 1, 2) / 255.0  # (B,H,W,3)->(B,3,H,W)
    elif t.shape[1] != 3:
        raise InputError(f"{name}: float images must be (B,3,H,W), got {tuple(t.shape)}")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name}: float images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return t.contiguous()


def videos_float01(x: Any, name: str) -> torch.Tensor:
    """Videos as float32 (B,F,3,H,W) in [0, 1].

    Accepts float (B,F,3,H,W) in [0, 1] or uint8 (B,F,H,W,3) in [0, 255] (divided by 255).
    """
    is_uint8 = (isinstance(x, torch.Tensor) and x.dtype == torch.uint8) or (
        isinstance(x, np.ndarray) and x.dtype == np.uint8
    )
    t = as_tensor(x, name, torch.float32)
    if t.ndim != 5:
        raise InputError(
            f"{name}: expected (B,F,3,H,W) float or (B,F,H,W,3) uint8, got shape {tuple(t.shape)}"
        )
    if is_uint8:
        if t.shape[-1] != 3:
            raise InputError(f"{name}: uint8 videos must be (B,F,H,W,3), got {tuple(t.shape)}")
        t = t.permute(0, 1, 4, 2, 3) / 255.0  # (B,F,H,W,3)->(B,F,3,H,W)
    elif t.shape[2] != 3:
        raise InputError(f"{name}: float videos must be (B,F,3,H,W), got {tuple(t.shape)}")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name}: float videos must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return t.contiguous()
