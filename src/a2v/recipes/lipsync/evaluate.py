"""Stage 1 evaluation: the paper's Table 1 and Fig. 5 for a run of :func:`~a2v.recipes.lipsync.train.train_mouth`.

Zheng et al. 2020 (arXiv:2002.08700), §4.2: Table 1 gives MSE, MAE and inter-frame MSE of the
mouth PCA coefficients on held-out data for LSTM, BiLSTM, TCN and TCN+GAN; Fig. 5 the error at
each position of the output window (the ends, with less context, are worse).

- Table 1 here: every held-out sequence predicted whole with the long-audio inference of
  :mod:`~a2v.recipes.lipsync.mouth_infer` (overlapping windows, §4.3.4), errors over all frames
  with a face. Inter-frame MSE compares consecutive-frame differences (both frames with a face).
  A "mean mouth" row (all coefficients 0: the speaker's mean mouth) gives the scale.
- Fig. 5 here: every window of W video frames (stride ``eval.position_hop_video_frames``) of the
  held-out sequences run on its own; MSE per output position, averaged over windows and
  coefficients.

Writes ``OUT/table1.json``, ``OUT/table1.md`` and ``OUT/fig5_position_error.png`` (default
``OUT = RUN/eval``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.errors import InputError
from a2v.io import atomic_path, write_json_atomic, write_text_atomic
from a2v.metrics import inter_frame_mse, mae, mse
from a2v.recipes.lipsync.config import ARCHS
from a2v.recipes.lipsync.data import EncodedClip, WindowDataset, load_items
from a2v.recipes.lipsync.mouth_infer import predict_long

__all__ = ["evaluate_mouth", "format_table1", "sequence_errors", "position_errors", "LABELS"]

LABELS = {"lstm": "LSTM (time-delayed)", "bilstm": "BiLSTM", "tcn": "TCN", "tcn_gan": "TCN + GAN",
          "mean_mouth": "mean mouth (reference)"}


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous True runs of a bool (F,) mask as (start, stop)."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def sequence_errors(preds: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """MSE, MAE, inter-frame MSE over sequences pred/target float (F,D) each; target NaN rows skipped.

    Means over every (frame, coefficient) with a face; inter-frame over consecutive pairs of
    frames both with a face. Also ``n_frames`` and ``n_frames_without_face``.
    """
    sums = {"mse": 0.0, "mae": 0.0, "inter_mse": 0.0}
    n = n_pairs = n_bad = 0
    for p, y in zip(preds, targets, strict=True):
        valid = ~np.isnan(y).any(axis=1)  # (F,)
        n_bad += int((~valid).sum())
        for a, b in _runs(valid):
            pp, yy = torch.from_numpy(p[a:b]), torch.from_numpy(y[a:b])  # (f,D)
            sums["mse"] += float(mse(pp, yy)) * (b - a)
            sums["mae"] += float(mae(pp, yy)) * (b - a)
            n += b - a
            if b - a >= 2:
                sums["inter_mse"] += float(inter_frame_mse(pp[None], yy[None])) * (b - a - 1)  # (1,f,D)
                n_pairs += b - a - 1
    if n == 0:
        raise InputError("no held-out frame with a face to evaluate on")
    return {"mse": sums["mse"] / n, "mae": sums["mae"] / n, "inter_mse": sums["inter_mse"] / max(n_pairs, 1),
            "n_frames": n, "n_frames_without_face": n_bad}


@torch.no_grad()
def position_errors(model: torch.nn.Module, data: WindowDataset, batch: int = 64) -> np.ndarray:
    """MSE per output position float64 (W,) over every window of ``data``, each run on its own."""
    dev = next(model.parameters()).device
    total = np.zeros(data.w)
    for k in range(0, len(data), batch):
        items = [data[i] for i in range(k, min(k + batch, len(data)))]
        x = torch.stack([b["mfcc"] for b in items]).to(dev)  # (B,4W,13)
        y = torch.stack([b["mouth"] for b in items]).to(dev)  # (B,W,10)
        total += ((model(x).float() - y) ** 2).mean(dim=2).sum(dim=0).double().cpu().numpy()  # (B,W,10)->(W,)
    return total / max(len(data), 1)


def format_table1(result: dict) -> str:
    """Markdown Table 1 (rows in the paper's order) from :func:`evaluate_mouth`'s result."""
    rows = result["table1"]
    lines = ["| model | MSE | MAE | inter-frame MSE |", "|---|---:|---:|---:|"]
    for name in [*ARCHS, "mean_mouth"]:
        if name in rows:
            r = rows[name]
            lines.append(f"| {LABELS[name]} | {r['mse']:.4f} | {r['mae']:.4f} | {r['inter_mse']:.4f} |")
    lines.append("")
    lines.append(f"Held-out: {', '.join(result['holdout_ids'])} ({result['n_frames']} frames with a face, "
                 f"{result['n_frames_without_face']} without); mouth PCA coefficients, per-speaker normalised.")
    return "\n".join(lines)


def _plot(curves: dict[str, np.ndarray], path: Path, fps: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for name in ARCHS:
        if name in curves:
            ax.plot(np.arange(len(curves[name])), curves[name], marker=".", label=LABELS[name])
    ax.set_xlabel(f"position in the output window (video frame, {fps:g} fps)")
    ax.set_ylabel("MSE (mouth PCA)")
    ax.set_title("Error along the output window (cf. paper Fig. 5)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def evaluate_mouth(
    run_dir: str | Path, data_dir: str | Path | None = None, out_dir: str | Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Table 1 + Fig. 5 for every model exported in ``run_dir`` (``RUN/<model>/pipeline.json``).

    ``data_dir``: None = the run's own data and its held-out items (``RUN/run.json``); another
    folder (prepared dataset or videos) = all of its items, as a separate test set. Each
    held-out speaker's mouth is standardised with its own statistics (per-speaker PCA).
    Returns {"table1": {model: {"mse","mae","inter_mse"}}, "position_mse": {model: [W floats]},
    "holdout_ids", "n_frames", "n_frames_without_face", "files": {...}}; prints the table.
    """
    from a2v.cliutil import console
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    run = Path(run_dir)
    info_path = run / "run.json"
    if not info_path.is_file():
        raise InputError(f"{run} has no run.json: give a run folder of 'a2v lipsync train --stage mouth'")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    archs = [a for a in ARCHS if (run / a / "pipeline.json").is_file()]
    if not archs:
        raise InputError(f"{run} holds no exported model (RUN/<model>/pipeline.json for {', '.join(ARCHS)})")
    pipes = {a: LipSyncPipeline.from_pretrained(run / a) for a in archs}
    dcfg = pipes[archs[0]].cfg.data
    own = data_dir is None or Path(data_dir).resolve() == Path(info["data_dir"])
    src = Path(info["data_dir"]) if data_dir is None else Path(data_dir)
    ids = info["holdout_ids"] if own else None
    if own and not ids:
        raise InputError(f"the run {run} kept no held-out items (data.holdout_fraction=0): give a test data_dir")
    items = load_items(src, dcfg, ids=ids, cache_dir=run / "items" if own else None, progress=progress)
    table: dict[str, dict] = {}
    curves: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for a, pipe in pipes.items():
        seqs: list[EncodedClip] = pipe.features.encode(items)  # new speakers: stats of their own items
        ov, bw = pipe.cfg.eval.overlap_audio_frames, pipe.cfg.eval.batch_windows
        preds = [predict_long(pipe.model, s.mfcc, overlap_audio_frames=ov, batch_windows=bw, progress=False)
                 for s in seqs]  # (4F,13)->(F,10) each
        errs = sequence_errors(preds, [s.mouth for s in seqs])
        counts = {k: errs.pop(k) for k in ("n_frames", "n_frames_without_face")}
        table[a] = errs
        ds = WindowDataset(seqs, pipe.cfg.data.window_video_frames, pipe.cfg.eval.position_hop_video_frames)
        if len(ds):
            curves[a] = position_errors(pipe.model, ds, bw)
        if a == archs[0]:
            table["mean_mouth"] = sequence_errors([np.zeros_like(s.mouth) for s in seqs], [s.mouth for s in seqs])
            table["mean_mouth"] = {k: table["mean_mouth"][k] for k in ("mse", "mae", "inter_mse")}
    out = Path(out_dir) if out_dir is not None else run / "eval"
    result: dict[str, Any] = {
        "table1": table,
        "position_mse": {a: c.tolist() for a, c in curves.items()},
        "holdout_ids": [it.id for it in items],
        "data_dir": str(src.resolve()),
        **counts,
        "pca_explained_variance_total": info.get("pca_explained_variance_total"),
        "files": {"json": str(out / "table1.json"), "markdown": str(out / "table1.md")},
    }
    if curves:
        result["files"]["plot"] = str(out / "fig5_position_error.png")
        _plot(curves, out / "fig5_position_error.png", dcfg.video_fps)
    md = format_table1(result)
    write_text_atomic(out / "table1.md", "# Lip-sync stage 1, Table 1 (held-out data)\n\n" + md + "\n")
    write_json_atomic(out / "table1.json", result)
    console.print(md)
    return result
