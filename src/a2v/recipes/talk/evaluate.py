"""Evaluation of a talk run (paper sec. 4): inversion quality, VAE reconstruction, Embed2Lat validation MSE.

    metrics = evaluate_run("runs/talk")      # also written to runs/talk/eval.json

- inversion: per-frame pixel MSE stored by the invert stage -> PSNR in dB (images in [-1,1], peak-to-peak 2);
  LPIPS per frame = (loss - mse_weight * MSE) / lpips_weight when the inversion used LPIPS.
- VAE: MSE of the reconstruction from the posterior mean, on normalised offsets of the held-out clips
  (all clips when none are held out).
- Embed2Lat: MSE between predicted codes and the VAE means on the held-out clips (paper: 0.273).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from a2v.io import write_json_atomic
from a2v.recipes.talk.config import TalkConfig
from a2v.recipes.talk.data import LatentStore, split_ids


def inversion_metrics(store: LatentStore, cfg: TalkConfig) -> dict[str, float]:
    """{"inversion_psnr_db", "inversion_mse", ("inversion_lpips")} averaged over every frame of the store."""
    mse, lp = [], []
    inv = cfg.invert
    for cid in store.ids:
        c = store.clip(cid)
        mse.append(c["mse"])
        if inv.lpips_weight > 0:
            lp.append((c["loss"] - inv.mse_weight * c["mse"]) / inv.lpips_weight)
    m = torch.cat(mse)  # (N,)
    out = {"inversion_mse": float(m.mean()),
           "inversion_psnr_db": float((10 * torch.log10(4.0 / m.clamp_min(1e-12))).mean())}
    if lp:
        out["inversion_lpips"] = float(torch.cat(lp).mean())
    return out


@torch.no_grad()
def model_metrics(pipe: Any, store: LatentStore, val_fraction: float) -> dict[str, float]:
    """VAE reconstruction MSE and Embed2Lat MSE (normalised offset space / code space) on held-out clips."""
    from a2v.recipes.talk.data import offsets
    from a2v.recipes.talk.train import encode_speech

    _, val_ids = split_ids(store.ids, val_fraction)
    ids = val_ids or store.ids
    dev = pipe.device
    rec, e2l = [], []
    for cid in ids:
        c = store.clip(cid)
        x = pipe.normalizer(offsets(c["ws"], pipe.cfg.latents.layers)).to(dev)  # (F,D)
        mu, _ = pipe.vae.encode(x)  # (F,D)->(F,Z)
        rec.append((pipe.vae.decode(mu) - x).pow(2).mean(-1))  # (F,)
        feats = encode_speech(pipe._encoder(), c["audio"])  # (S,)->(T,D')
        pred = pipe.embed2lat(feats[None].to(dev), x.shape[0])[0]  # (1,T,D')->(F,Z)
        e2l.append((pred - mu).pow(2).mean(-1))  # (F,)
    return {"vae_recon_mse": float(torch.cat(rec).mean()), "embed2lat_val_mse": float(torch.cat(e2l).mean()),
            "eval_clips": float(len(ids))}


def evaluate_run(run_dir: str | Path, *, pipeline: Any = None, speech_encoder: Any = None,
                 device: str | None = None) -> dict[str, float]:
    """All metrics of a finished run folder (latents/ and pipeline/); written to ``run_dir/eval.json``."""
    from a2v.recipes.talk.pipeline import TalkPipeline

    run_dir = Path(run_dir)
    pipe = pipeline or TalkPipeline.from_pretrained(run_dir / "pipeline", device=device, speech_encoder=speech_encoder)
    store = LatentStore(run_dir / "latents")
    metrics = {**inversion_metrics(store, pipe.cfg), **model_metrics(pipe, store, pipe.cfg.embed2lat.val_fraction)}
    write_json_atomic(run_dir / "eval.json", metrics)
    return metrics
