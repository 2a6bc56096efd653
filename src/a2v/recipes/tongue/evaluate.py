"""Tongue evaluation: RMSE, PSNR, SSIM (+ LPIPS, FID, FVD when their weights are on disk) on held-out utterances,
and the paper's Table 1/2 layout (models x {A, A+T} x {64, 96, 112} px).

Images are compared as uint8 grey frames (F,S,S) in [0,255]; RMSE is in grey levels, PSNR/SSIM
use data_range 255. Yang et al. 2024 report RMSE, PSNR, SSIM, LPIPS (VGG) and an I3D-feature
Fréchet distance they call FID; ours is the same statistic on I3D features of the clips.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import MissingWeightsError

log = logging.getLogger(__name__)

__all__ = ["frame_metrics", "evaluate_pipeline", "table_rows", "print_table", "SIZES", "CONDS"]

SIZES = (64, 96, 112)
CONDS = ("A", "A+T")


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
                      use_lpips: bool = True, use_fid: bool = True, progress: bool = True) -> dict[str, float]:
    """Generate every held-out utterance of a prepared folder and average the metrics over utterances.

    names: utterances to use (default: the config's held-out split); max_items > 0 caps them.
    LPIPS/FID/FVD are added when their weights are on disk, else skipped with a log line naming the file.
    """
    from tqdm.auto import tqdm

    from a2v.recipes.tongue.data import load_prepared, split_for
    from a2v.recipes.tongue.ultrasound import resize_frames

    utts = load_prepared(Path(data_dir))
    if names is None:
        names = split_for(Path(data_dir), utts, pipe.cfg.data)[1] or [u.name for u in utts]
    chosen = [u for u in utts if u.name in names][: max_items or None]
    lp = None
    if use_lpips:
        try:
            from a2v.metrics import build_lpips

            lp = build_lpips()
        except MissingWeightsError as e:
            log.warning("LPIPS skipped: %s", e)
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
        res.update(_distribution_metrics(reals, fakes, pipe.cfg.data.clip_frames))
    return res


def _distribution_metrics(reals: list[np.ndarray], fakes: list[np.ndarray], clip: int) -> dict[str, float]:
    """FID over all frames and FVD over clips of ``clip`` frames, when the Inception/I3D weights are on disk."""
    from a2v.metrics import fid, fvd

    out: dict[str, float] = {}
    r = np.concatenate(reals)[..., None].repeat(3, -1)  # (N,S,S)->(N,S,S,3)
    f = np.concatenate(fakes)[..., None].repeat(3, -1)  # (N,S,S)->(N,S,S,3)
    try:
        out["fid"] = float(fid(r, f, progress=False))
    except MissingWeightsError as e:
        log.warning("FID skipped: %s", e)
    clips_r = [x[i:i + clip] for x in reals for i in range(0, len(x) - clip + 1, clip)]
    clips_f = [x[i:i + clip] for x in fakes for i in range(0, len(x) - clip + 1, clip)]
    if len(clips_r) >= 2:
        try:
            out["fvd"] = float(fvd(np.stack(clips_r)[..., None].repeat(3, -1), np.stack(clips_f)[..., None].repeat(3, -1),
                                   progress=False))  # (N,F,S,S,3)
        except MissingWeightsError as e:
            log.warning("FVD skipped: %s", e)
    return out


def table_rows(results: dict[tuple[str, str, int], dict[str, float]],
               metrics: tuple[str, ...] = ("rmse", "psnr", "ssim", "lpips")) -> tuple[list[str], list[list[str]]]:
    """Paper layout: header ["Model", "A 64", ..., "A+T 112"], one row per model, cells "rmse/psnr/ssim/lpips".

    results: {(model label, "A" | "A+T", size px): metrics}; missing runs show "-".
    """
    header = ["Model"] + [f"{c} {s}" for c in CONDS for s in SIZES]
    rows = []
    for model in sorted({k[0] for k in results}):
        row = [model]
        for c in CONDS:
            for s in SIZES:
                m = results.get((model, c, s))
                row.append("-" if m is None else "/".join(f"{m[k]:.3g}" for k in metrics if k in m))
        rows.append(row)
    return header, rows


def print_table(results: dict[tuple[str, str, int], dict[str, float]]) -> None:
    """Print :func:`table_rows` as a rich table (cells: RMSE/PSNR/SSIM/LPIPS)."""
    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(results)
    t = Table(title="Tongue (Table 1/2 layout): RMSE/PSNR/SSIM/LPIPS per model x condition x size")
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    Console().print(t)
