"""Full-reference image metrics: PSNR and SSIM, with the data range always stated.

Images: float (B,C,H,W) with values in [0, data_range] (data_range=1.0 for [0,1] images), or
uint8 (B,H,W,C) in [0,255] with data_range=255 (only the layout is changed). C is 1 or 3.
Numpy arrays or torch tensors; computed in float64.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from a2v.errors import InputError, missing_package
from a2v.metrics._inputs import images_bchw, same_shape


def psnr(
    pred: Any, target: Any, *, data_range: float, reduction: Literal["mean", "none"] = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: 10 log10(R^2 / MSE), MSE per image.

    pred, target: images as described in the module docstring, same shape (B,C,H,W).
    data_range: R, the span of valid values (1.0 for [0,1] floats, 255 for uint8).
    Returns float64: the mean over the batch of per-image PSNR (``"mean"``) or (B,) (``"none"``).
    Identical images give +inf.
    """
    if not data_range > 0:
        raise InputError(f"data_range must be > 0, got {data_range}")
    p, t = images_bchw(pred, "pred", data_range), images_bchw(target, "target", data_range)
    same_shape(p, t)
    err = ((p - t) ** 2).flatten(1).mean(dim=1)  # (B,C,H,W)->(B,)
    val = 10.0 * torch.log10(data_range**2 / err)  # (B,)
    if reduction == "none":
        return val
    if reduction == "mean":
        return val.mean()
    raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def ssim(
    pred: Any,
    target: Any,
    *,
    data_range: float,
    kernel_size: int = 11,
    sigma: float = 1.5,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5.

    Delegates to torchmetrics' ``structural_similarity_index_measure`` (K1=0.01, K2=0.03, channels
    averaged). pred, target: images as in the module docstring, same shape (B,C,H,W), H and W at
    least ``kernel_size``. Returns float64 in [-1, 1]: batch mean (``"mean"``) or (B,) (``"none"``).
    Matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=R)`` to ~1e-3 (border handling differs slightly).
    """
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure
    except ImportError as e:
        raise missing_package("torchmetrics", "metrics", "SSIM") from e
    if not data_range > 0:
        raise InputError(f"data_range must be > 0, got {data_range}")
    p, t = images_bchw(pred, "pred", data_range), images_bchw(target, "target", data_range)
    same_shape(p, t)
    if min(p.shape[-2:]) < kernel_size:
        raise InputError(
            f"SSIM needs images of at least {kernel_size}x{kernel_size} pixels, got {tuple(p.shape[-2:])}"
        )
    red = "elementwise_mean" if reduction == "mean" else "none"
    if reduction not in ("mean", "none"):
        raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return structural_similarity_index_measure(
        p,
        t,
        gaussian_kernel=True,
        sigma=sigma,
        kernel_size=kernel_size,
        data_range=float(data_range),
        reduction=red,
    )
