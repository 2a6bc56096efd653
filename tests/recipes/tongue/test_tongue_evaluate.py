"""Evaluation metrics on known differences and the paper's Table 1/2 layout."""

from __future__ import annotations

import pytest

from a2v.recipes.tongue.evaluate import frame_metrics, table_rows


def test_metrics_and_table_layout() -> None:
    import numpy as np

    a = np.full((3, 16, 16), 100, np.uint8)
    m = frame_metrics(a, a + 10)
    assert m["rmse"] == pytest.approx(10.0) and m["psnr"] == pytest.approx(20 * np.log10(255 / 10))
    assert frame_metrics(a, a)["ssim"] == pytest.approx(1.0)
    header, rows = table_rows({("DNN", "A", 64): {"rmse": 1.0, "psnr": 2.0, "ssim": 0.5},
                               ("Diffusion", "A+T", 112): {"rmse": 3.0, "psnr": 4.0, "ssim": 0.25}})
    assert header == ["Model", "A 64", "A 96", "A 112", "A+T 64", "A+T 96", "A+T 112"]
    assert rows == [["DNN", "1/2/0.5", "-", "-", "-", "-", "-"], ["Diffusion", "-", "-", "-", "-", "-", "3/4/0.25"]]
