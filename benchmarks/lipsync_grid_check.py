"""Integration check of lip-sync stage 1 on GRID clips, one held-out speaker per fold (paper Table 1 layout).

For each ``--holdout`` id: train the four stage 1 models (TCN + GAN, TCN, time-delayed LSTM, BiLSTM)
on the other GRID clips of ``--grid`` (one speaker per clip, per-speaker normalised PCA) with the
CPU-sized settings of docs/lipsync.md, evaluate them on the held-out clip (MSE, MAE, inter-frame
MSE, and the speaker's mean mouth as the reference row), and write
``benchmarks/results/lipsync_grid_folds.json`` with every fold and the mean over folds (each fold's
numbers are also kept in ``RUNS/<id>/eval``). Folds already in the results file are kept (resume).

    .venv/bin/python benchmarks/lipsync_grid_check.py --holdout swiz3n bbaf2n lbax4n --runs /tmp/grid_folds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "lipsync_grid_folds.json"
CPU_SIZED = ["model.channels=64", "model.fc_hidden=64", "model.disc_channels=64", "model.lstm_hidden=64",
             "train.max_steps=1000", "train.batch_size=16", "train.lr=1e-3", "gan_lr_d=1e-3"]
MODELS = ("tcn_gan", "tcn", "lstm", "bilstm")


def summarise(folds: dict[str, dict]) -> dict:
    """Mean over folds of each model's metrics, and per metric how many folds each model wins."""
    rows = sorted({m for f in folds.values() for m in f["table1"]})
    mean = {m: {k: sum(f["table1"][m][k] for f in folds.values()) / len(folds) for k in ("mse", "mae", "inter_mse")}
            for m in rows}
    wins = {k: {m: sum(1 for f in folds.values()
                       if min((x for x in MODELS if x in f["table1"]), key=lambda x: f["table1"][x][k]) == m)
                for m in MODELS} for k in ("mse", "mae", "inter_mse")}
    return {"folds": len(folds), "mean": mean, "best_model_wins": wins}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=Path, default=REPO.parent / "shared" / "data" / "grid")
    ap.add_argument("--holdout", nargs="+", required=True, help="held-out clip ids, one fold each")
    ap.add_argument("--runs", type=Path, required=True, help="where the fold runs go")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from a2v.config import load_config
    from a2v.io import write_json_atomic
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.evaluate import evaluate_mouth
    from a2v.recipes.lipsync.train import train_mouth

    torch.set_num_threads(args.threads)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    folds: dict[str, dict] = old.get("per_fold", {})
    for hid in args.holdout:
        if hid in folds:
            print(f"fold {hid}: already in {RESULTS.name}, kept")
            continue
        cfg = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "paper.yaml",
                          [*CPU_SIZED, f"data.holdout_ids=[{hid}]"])
        run = args.runs / hid
        t0 = time.perf_counter()
        train_mouth(args.grid, run, cfg, MODELS, resume=True, progress=False)
        res = evaluate_mouth(run, progress=False)
        folds[hid] = {"table1": res["table1"], "n_frames": res["n_frames"],
                      "pca_explained_variance_total": res["pca_explained_variance_total"],
                      "seconds": round(time.perf_counter() - t0, 1)}
        write_json_atomic(RESULTS, {"benchmark": "lipsync_grid_folds", "settings": CPU_SIZED, "models": MODELS,
                                    "threads": args.threads, "per_fold": folds, "summary": summarise(folds)})
        print(f"fold {hid} done in {folds[hid]['seconds']} s")
    print(json.dumps(summarise(folds), indent=1))


if __name__ == "__main__":
    main()
