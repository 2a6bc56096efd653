"""Evaluation of a talk run (paper sec. 4): inversion quality, VAE reconstruction, Embed2Lat validation MSE.

    metrics = evaluate_run("runs/talk")      # also written to runs/talk/eval.json

- inversion: per-frame pixel MSE stored by the invert stage -> PSNR in dB (images in [-1,1], peak-to-peak 2);
  LPIPS per frame = (loss - mse_weight * MSE) / lpips_weight when the inversion used LPIPS.
- VAE: MSE of the reconstruction from the posterior mean, on normalised offsets of the held-out clips
  (all clips when none are held out).
- Embed2Lat: MSE between predicted codes and the VAE means on the held-out clips (paper: 0.273), each clip
  run as Embed2Lat was trained (whole, or in windows of ``embed2lat.window_frames``): the training run's val_mse.
- with a generated video: mouth-audio sync (a2v.metrics.sync); when it cannot be measured (no face found) the
  part is listed under "not_measured" with the reason and the other metrics are kept.
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
    from a2v.recipes.talk.model import predict_clip_codes
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
        pred = predict_clip_codes(pipe.embed2lat, feats, x.shape[0], pipe.cfg.embed2lat.window_frames,
                                  float(getattr(pipe._encoder(), "frame_rate_hz", 50.0)), store.fps)  # (T,D')->(F,Z), as in training
        e2l.append((pred - mu).pow(2).mean(-1))  # (F,)
    return {"vae_recon_mse": float(torch.cat(rec).mean()), "embed2lat_val_mse": float(torch.cat(e2l).mean()),
            "eval_clips": float(len(ids))}


def video_metrics(video: str | Path, device: str = "cpu") -> tuple[dict[str, float], dict[str, str]]:
    """Mouth-audio sync of a generated video (a2v.metrics.sync.measure_video_sync) -> ({"sync_corr",
    "sync_lag_frames", "sync_face_frames", "sync_frames"}, {}), or ({}, {"sync": why}) when it cannot be measured
    (no face found in any frame, no audio track): the part is reported as missing, the other metrics stand."""
    from a2v.errors import InputError
    from a2v.metrics.sync import measure_video_sync

    try:
        r = measure_video_sync(video, device=device, progress=False)
    except InputError as e:
        return {}, {"sync": str(e)}
    return {"sync_corr": float(r["sync_corr"]), "sync_lag_frames": float(r["sync_lag_frames"]),
            "sync_face_frames": float(r["n_face_frames"]), "sync_frames": float(r["n_frames"])}, {}


def evaluate_run(run_dir: str | Path, *, pipeline: Any = None, speech_encoder: Any = None,
                 device: str | None = None, video: str | Path | None = None) -> dict[str, Any]:
    """All metrics of a finished run folder (latents/ and pipeline/) [+ the sync of a generated ``video``];
    written to ``run_dir/eval.json`` once everything is measured.

    A part that could not be measured (the sync of a video with no face) is listed under ``"not_measured"``
    ({part: reason}) instead of failing the evaluation; a ``video`` that does not exist fails before anything
    is written.
    """
    from a2v.errors import InputError
    from a2v.recipes.talk.pipeline import TalkPipeline

    run_dir = Path(run_dir)
    if video is not None and not Path(video).is_file():
        raise InputError(f"video to evaluate not found: {video} (give a video written by `a2v talk generate`)")
    pipe = pipeline or TalkPipeline.from_pretrained(run_dir / "pipeline", device=device, speech_encoder=speech_encoder)
    store = LatentStore(run_dir / "latents")
    metrics: dict[str, Any] = {**inversion_metrics(store, pipe.cfg),
                               **model_metrics(pipe, store, pipe.cfg.embed2lat.val_fraction)}
    if video is not None:
        sync, missing = video_metrics(video, device="cpu" if device in (None, "auto") else device)
        metrics.update(sync)
        if missing:
            metrics["not_measured"] = missing
    write_json_atomic(run_dir / "eval.json", metrics)
    return metrics
