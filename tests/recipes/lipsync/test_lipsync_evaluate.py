"""Table 1 / Fig. 5 pieces: error sums against closed forms (NaN frames skipped), table text, bad runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lipsync_testutil import synthetic_item

from a2v.errors import InputError
from a2v.recipes.lipsync.config import LipSyncDataConfig
from a2v.recipes.lipsync.data import MouthFeatures, WindowDataset
from a2v.recipes.lipsync.evaluate import evaluate_mouth, format_table1, position_errors, sequence_errors


def test_sequence_errors_skip_frames_without_face():
    rng = np.random.default_rng(0)
    y1, p1 = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
    y2, p2 = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    y1n = y1.copy()
    y1n[4] = np.nan  # splits sequence 1 into frames 0-3 and 5-9
    r = sequence_errors([p1, p2], [y1n, y2])
    keep = np.r_[0:4, 5:10]
    err = np.concatenate([(p1 - y1)[keep], p2 - y2])
    assert r["mse"] == pytest.approx(float((err**2).mean()))
    assert r["mae"] == pytest.approx(float(np.abs(err).mean()))
    d = [np.diff(p1[0:4] - y1[0:4], axis=0), np.diff(p1[5:10] - y1[5:10], axis=0), np.diff(p2 - y2, axis=0)]
    assert r["inter_mse"] == pytest.approx(float((np.concatenate(d) ** 2).mean()))
    assert (r["n_frames"], r["n_frames_without_face"]) == (15, 1)
    with pytest.raises(InputError, match="no held-out frame"):
        sequence_errors([p1[:2]], [np.full((2, 3), np.nan)])


class _Shift(torch.nn.Module):
    """Predicts target + position index: error at position j is exactly j^2."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):  # (B,4W,13)->(B,W,10)
        return torch.arange(x.shape[1] // 4, dtype=torch.float32)[None, :, None].expand(x.shape[0], -1, 10)


def test_position_errors_closed_form():
    items = [synthetic_item("a", 40)]
    seq = MouthFeatures(LipSyncDataConfig()).fit(items).encode(items)[0]
    seq.mouth[:] = 0.0
    ds = WindowDataset([seq], 20, 3)
    np.testing.assert_allclose(position_errors(_Shift(), ds, batch=2), np.arange(20.0) ** 2, rtol=1e-6)


def test_format_table1_rows_in_paper_order():
    row = {"mse": 0.5, "mae": 0.25, "inter_mse": 0.125}
    res = {"table1": {"tcn_gan": row, "lstm": row, "mean_mouth": row, "bilstm": row, "tcn": row},
           "holdout_ids": ["x"], "n_frames": 75, "n_frames_without_face": 0}
    lines = format_table1(res).splitlines()
    assert [ln.split("|")[1].strip() for ln in lines[2:7]] == [
        "LSTM (time-delayed)", "BiLSTM", "TCN", "TCN + GAN", "mean mouth (reference)"]
    assert "| 0.5000 | 0.2500 | 0.1250 |" in lines[2] and "75 frames" in format_table1(res)


def test_bad_run_folders(tmp_path):
    with pytest.raises(InputError, match="run.json"):
        evaluate_mouth(tmp_path, progress=False)
    (tmp_path / "run.json").write_text(json.dumps({"data_dir": str(tmp_path), "holdout_ids": []}))
    with pytest.raises(InputError, match="no exported model"):
        evaluate_mouth(tmp_path, progress=False)
