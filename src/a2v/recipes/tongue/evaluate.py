"""Tongue evaluation on held-out utterances, as in the paper's Tables 1/2: RMSE, PSNR, SSIM, LPIPS (VGG)
and "FID", the Fréchet distance of I3D features of generated vs real clips (FVD-style).

Images are compared as uint8 grey frames (F,S,S) in [0,255]; RMSE is in grey levels, PSNR/SSIM
use data_range 255. LPIPS uses the VGG backbone (Yang et al. 2024) from disk; the I3D network is
:class:`a2v.metrics.i3d.InceptionI3d` with weights from disk (``metrics.i3d_weights``). When a
weights file is absent the metric is left out, the table shows "-" and a note names the file.
One table row per evaluated pipeline: model x condition (A / A+T) x output size (64 / 96 / 112).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import MissingWeightsError

log = logging.getLogger(__name__)

__all__ = ["frame_metrics", "evaluate_pipeline", "i3d_fid", "table_rows", "print_table", "SIZES", "CONDS",
           "METRICS"]

SIZES = (64, 96, 112)
CONDS = ("A", "A+T")
METRICS = (("rmse", "RMSE"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("lpips", "LPIPS"), ("fid", "FID (I3D)"))


def frame_metrics(pred: np.ndarray, target: np.ndarray, lpips_model: Any = None) -> dict[str, float]:
    """uint8 (F,S,S) prediction vs ground truth -> {"rmse", "psnr", "ssim"[, "lpips"]} averaged over frames."""
    from a2v.metrics import lpips_distance, psnr, rmse, ssim

    n = min(len(pred), len(target))
    p, t = pred[:n, ..., None], target[:n, ..., None]  # (F,S,S)->(F,S,S,1)
    out = {"rmse": float(rmse(p.astype(np.float64), t.astype(np.float64))),
           "psnr": float(psnr(p, t, data_range=255.0)), "ssim": float(ssim(p, t, data_range=255.0))}
    if lpips_model is not None:
        rgb = lambda x: np.repeat(x, 3, axis=-1)  # noqa: E731  # (F,S,S,1)->(F,S,S,3)
        out["lpips"] = float(lpips_distance(rgb(p), rgb(t), model=lpips_model))
    return out


def evaluate_pipeline(pipe: Any, data_dir: str | Path, names: list[str] | None = None, max_items: int = 0,
                      use_lpips: bool = True, use_fid: bool = True, progress: bool = True,
                      notes: list[str] | None = None) -> dict[str, float]:
    """Generate every held-out utterance of a prepared folder and average the metrics over utterances.

    names: utterances to use (default: the folder's test split); max_items > 0 caps them.
    LPIPS (``pipe.cfg.metrics.lpips_net``, VGG) and the I3D FID are added when their weights are
    on disk; otherwise a line naming the file is appended to ``notes`` (and logged).
    """
    from tqdm.auto import tqdm

    from a2v.recipes.tongue.data import load_prepared, split_for
    from a2v.recipes.tongue.ultrasound import resize_frames

    notes = notes if notes is not None else []
    mc = pipe.cfg.metrics
    utts = load_prepared(Path(data_dir))
    if names is None:
        names = split_for(Path(data_dir), utts, pipe.cfg.data)[1]
        if not names:  # measured, but not on held-out data: said with the numbers
            names = [u.name for u in utts]
            _note(notes, f"{data_dir}: no held-out utterances in its split, so all {len(utts)} were evaluated "
                  "(training ones included); prepare with data.holdout_fraction > 0 or a speaker split")
    chosen = [u for u in utts if u.name in names][: max_items or None]
    lp = None
    if use_lpips:
        try:
            from a2v.metrics import build_lpips

            lp = build_lpips(mc.lpips_net, mc.lpips_weights or None)
        except MissingWeightsError as e:
            _note(notes, f"LPIPS skipped: {e}")
    per: list[dict[str, float]] = []
    reals, fakes = [], []
    for u in tqdm(chosen, desc="evaluate tongue", unit="utt", disable=not progress):
        fake = pipe.generate(u.wav, u.text, n_frames=len(u.frames), progress=False)  # (F,S,S)
        real = resize_frames(u.frames, fake.shape[1])  # (F,S,S)
        per.append(frame_metrics(fake, real, lp))
        reals.append(real)
        fakes.append(fake)
    res = {k: float(np.mean([m[k] for m in per])) for k in per[0]} if per else {}
    res["n_utterances"] = len(per)
    if use_fid and per:
        try:
            from a2v.metrics.i3d import I3DConfig, load_i3d_weights

            det = load_i3d_weights(mc.i3d_weights or None, I3DConfig(width=mc.i3d_width))
            res.update(i3d_fid(reals, fakes, pipe.cfg.data.clip_frames, det))
        except MissingWeightsError as e:
            _note(notes, f"FID (I3D) skipped: {e}")
    return res


def _note(notes: list[str], line: str) -> None:
    log.warning("%s", line)
    if line not in notes:
        notes.append(line)


def i3d_fid(reals: list[np.ndarray], fakes: list[np.ndarray], clip: int, detector: Any,
            batch_size: int = 8) -> dict[str, float]:
    """The paper's "FID": Fréchet distance between I3D features of real and generated clips.

    reals, fakes: uint8 (F,S,S) videos, cut into non-overlapping clips of ``clip`` frames; grey
    repeated to RGB, prepared as for FVD (224 px, [-1,1]; :func:`a2v.metrics.i3d_features`).
    Returns {"fid", "fid_clips"}, or {} with fewer than 2 clips per side.
    """
    from a2v.metrics import fvd

    cr = [x[i:i + clip] for x in reals for i in range(0, len(x) - clip + 1, clip)]  # N x (clip,S,S)
    cf = [x[i:i + clip] for x in fakes for i in range(0, len(x) - clip + 1, clip)]
    if len(cr) < 2 or len(cf) < 2:
        log.warning("FID (I3D) needs 2+ clips of %d frames per side, got %d / %d", clip, len(cr), len(cf))
        return {}
    rgb = lambda c: np.stack(c)[..., None].repeat(3, -1)  # noqa: E731  # N x (F,S,S)->(N,F,S,S,3)
    return {"fid": float(fvd(rgb(cr), rgb(cf), detector=detector, batch_size=batch_size, progress=False)),
            "fid_clips": float(len(cr))}


def table_rows(results: dict[tuple[str, str, int], dict[str, float]],
               metrics: tuple[tuple[str, str], ...] = METRICS) -> tuple[list[str], list[list[str]]]:
    """Header ["Model", "Cond", "Size", "RMSE", ..., "FID (I3D)"] and one row per evaluated (model, cond, size).

    results: {(model label, "A" | "A+T", size px): metrics}; rows sorted by model, condition, size;
    a metric that was not computed (weights absent) shows "-".
    """
    header = ["Model", "Cond", "Size"] + [title for _, title in metrics]
    order = lambda k: (k[0], CONDS.index(k[1]) if k[1] in CONDS else 9, k[2])  # noqa: E731
    rows = [[model, cond, str(size)] + [f"{m[key]:.4g}" if key in m else "-" for key, _ in metrics]
            for (model, cond, size), m in sorted(results.items(), key=lambda kv: order(kv[0]))]
    return header, rows


def print_table(results: dict[tuple[str, str, int], dict[str, float]], notes: list[str] | None = None) -> None:
    """Print :func:`table_rows` as a rich table, then the notes (metrics left out and why)."""
    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(results)
    t = Table(title="Tongue (paper Tables 1/2): held-out utterances, one row per model x condition x size")
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    con = Console()
    con.print(t)
    for n in notes or []:
        con.print(n, markup=False)
