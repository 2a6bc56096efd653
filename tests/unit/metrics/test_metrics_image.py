"""PSNR against its closed form, SSIM against scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from a2v.errors import InputError
from a2v.metrics import psnr, ssim


@pytest.mark.parametrize("data_range,err", [(1.0, 0.1), (255.0, 4.0), (2.0, 0.5)])
def test_psnr_constant_error_closed_form(data_range, err):
    target = torch.full((2, 3, 8, 8), data_range / 4, dtype=torch.float64)
    pred = target + err
    expected = 10 * math.log10(data_range**2 / err**2)
    assert float(psnr(pred, target, data_range=data_range)) == pytest.approx(expected, rel=1e-9)


def test_psnr_uint8_layout_and_per_image():
    g = np.random.default_rng(0)
    a = g.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)  # (B,H,W,C)
    b = np.clip(a.astype(int) + g.integers(-5, 6, size=a.shape), 0, 255).astype(np.uint8)
    from skimage.metrics import peak_signal_noise_ratio

    per = psnr(a, b, data_range=255, reduction="none")
    ref = [peak_signal_noise_ratio(a[i], b[i], data_range=255) for i in range(2)]
    np.testing.assert_allclose(per.numpy(), ref, rtol=1e-9)
    with pytest.raises(InputError, match="data_range=255"):
        psnr(a, b, data_range=1.0)


def test_psnr_identical_is_inf():
    x = torch.rand(1, 3, 4, 4)
    assert math.isinf(float(psnr(x, x, data_range=1.0)))


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    g = np.random.default_rng(3)
    base = g.random((2, 3, 48, 40))
    noisy = np.clip(base + 0.1 * g.standard_normal(base.shape), 0, 1)
    ours = ssim(noisy, base, data_range=1.0, reduction="none").numpy()
    ref = [
        structural_similarity(
            noisy[i],
            base[i],
            data_range=1.0,
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for i in range(2)
    ]
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    assert float(ssim(base, base, data_range=1.0)) == pytest.approx(1.0, abs=1e-6)


def test_ssim_rejects_small_and_wrong_layout():
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), data_range=1.0)
    with pytest.raises(InputError, match=r"\(B,C,H,W\)"):
        ssim(torch.rand(1, 16, 16, 3), torch.rand(1, 16, 16, 3), data_range=1.0)
