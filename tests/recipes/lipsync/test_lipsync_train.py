"""Stage 1 training: tiny models overfit a synthetic task through a2v.train.fit; train_mouth + evaluate_mouth smoke."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lipsync_testutil import synthetic_item, write_dataset

from a2v.config import load_config
from a2v.errors import ConfigError
from a2v.recipes.lipsync.config import LipSyncConfig
from a2v.recipes.lipsync.data import MouthFeatures, WindowDataset
from a2v.recipes.lipsync.evaluate import evaluate_mouth
from a2v.recipes.lipsync.pipeline import LipSyncPipeline
from a2v.recipes.lipsync.train import MouthTask, model_config, train_mouth, window_metrics
from a2v.train import fit

TINY = Path(__file__).resolve().parents[3] / "configs" / "lipsync" / "tiny.yaml"


def tiny(*sets: str) -> LipSyncConfig:
    return load_config(LipSyncConfig, TINY, list(sets))


@pytest.mark.parametrize("arch", ["tcn", "tcn_gan"])
def test_task_overfits_synthetic_windows(arch, tmp_path):
    """Mouth = linear map of the frame's MFCC: training error drops by a large factor."""
    cfg = model_config(tiny("train.max_steps=60", "train.lr=5e-3", "train.batch_size=12", "train.eval_every=0",
                            "train.log_every=60", "model.adv_weight=0.001"), arch)
    items = [synthetic_item(f"s{i}", 40, seed=i) for i in range(2)]
    f = MouthFeatures(cfg.data).fit(items)
    ds = WindowDataset(f.encode(items), 20, 4)
    torch.manual_seed(0)
    task = MouthTask(cfg)
    before = window_metrics(task.g, ds)
    res = fit(task, ds, cfg.train, tmp_path, progress=False)
    after = window_metrics(task.g.eval(), ds)
    assert res.step == 60
    assert after["mse"] < 0.1 * before["mse"], (before, after)
    assert after["inter_mse"] < 0.2 * before["inter_mse"], (before, after)
    if arch == "tcn_gan":
        assert {"d_loss", "adv", "reg", "inter"} <= set(res.train_metrics)


class _Zeros(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):  # (B,4W,13)->(B,W,10)
        return torch.zeros(x.shape[0], x.shape[1] // 4, 10) + 0 * self.p


def test_window_metrics_closed_form():
    cfg = tiny()
    items = [synthetic_item("a", 45, seed=0)]
    ds = WindowDataset(MouthFeatures(cfg.data).fit(items).encode(items), 20, 5)
    _, y = ds.arrays()  # (N,20,10)
    m = window_metrics(_Zeros(), ds, batch=3)
    assert m["mse"] == pytest.approx(float((y**2).mean()), rel=1e-5)
    assert m["mae"] == pytest.approx(float(np.abs(y).mean()), rel=1e-5)
    assert m["inter_mse"] == pytest.approx(float((np.diff(y, axis=1) ** 2).mean()), rel=1e-5)


def test_train_mouth_and_evaluate_tiny(tmp_path):
    items = [synthetic_item(f"c{i}", 48, seed=i) for i in range(4)]
    data = write_dataset(tmp_path / "data", items)
    cfg = tiny("data.holdout_ids=[c3]")
    with pytest.raises(ConfigError, match="unknown lip-sync model"):
        train_mouth(data, tmp_path / "run", cfg, models=("gru",), progress=False)
    out = train_mouth(data, tmp_path / "run", cfg, progress=False)
    assert list(out) == ["tcn_gan", "tcn", "lstm", "bilstm"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["holdout_ids"] == ["c3"] and run["train_ids"] == ["c0", "c1", "c2"]
    assert 0.99 < run["pca_explained_variance_total"] <= 1.0 + 1e-9 and len(run["pca_explained_variance_ratio"]) == 10
    assert run["models"]["lstm"]["steps"] == 4 and run["jaw_r2"] is not None
    pipe = LipSyncPipeline.from_pretrained(out["tcn_gan"])
    assert pipe.cfg.model.arch == "tcn_gan" and pipe.jaw is not None
    assert pipe.predict_mouth(np.zeros(16000, np.float32) + 0.01).shape == (25, 10)
    # the four models were trained on the same features
    assert LipSyncPipeline.from_pretrained(out["lstm"]).features.to_dict() == pipe.features.to_dict()

    res = evaluate_mouth(tmp_path / "run", progress=False)
    assert set(res["table1"]) == {"tcn_gan", "tcn", "lstm", "bilstm", "mean_mouth"}
    assert res["holdout_ids"] == ["c3"] and res["n_frames"] == 48
    for row in res["table1"].values():
        assert set(row) == {"mse", "mae", "inter_mse"} and all(np.isfinite(v) and v >= 0 for v in row.values())
    assert all(len(c) == 20 for c in res["position_mse"].values())
    ev = tmp_path / "run" / "eval"
    assert (ev / "fig5_position_error.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "TCN + GAN" in (ev / "table1.md").read_text()
    assert json.loads((ev / "table1.json").read_text())["table1"] == res["table1"]

    # a finished run: resume re-exports without training; a fresh start is refused
    train_mouth(data, tmp_path / "run", cfg, models=("lstm",), resume=True, progress=False)
    assert set(json.loads((tmp_path / "run" / "run.json").read_text())["models"]) == set(out)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_mouth(data, tmp_path / "run", cfg, models=("lstm",), progress=False)
