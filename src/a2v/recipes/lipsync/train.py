"""Stage 1 training: the TCN+GAN generator and the paper's three baselines on the same data and loss.

Zheng et al. 2020 (arXiv:2002.08700), §3.1 and §4: MFCC (100 Hz) -> 10-D mouth PCA (25 fps) on
windows of 200 audio <-> 50 video frames; loss = regression + inter-frame (+ adversarial for the
GAN). :func:`train_mouth` trains each requested model with :func:`a2v.train.fit` and exports
it as a :class:`~a2v.recipes.lipsync.pipeline.LipSyncPipeline` folder::

    RUN/run.json                   data, split, PCA explained variance, windows, jaw fit, timings
    RUN/items/<id>.npz             per-clip landmarks + MFCC cache (only when reading videos)
    RUN/<model>/pipeline.json      LipSyncPipeline.from_pretrained(RUN/<model>)
    RUN/<model>/mouth_model.safetensors, jaw.json
    RUN/<model>/train/             a2v.train run folder: checkpoints/, config.json, logs

The exported weights are the last step's (``train.max_steps``): the held-out items are the test
set of Table 1 and are only logged during training, never used to pick a checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.config import to_dict
from a2v.errors import ConfigError, InputError
from a2v.io import write_json_atomic
from a2v.recipes.lipsync.config import ARCHS, LipSyncConfig
from a2v.recipes.lipsync.data import MouthFeatures, WindowDataset, load_items, split_items
from a2v.recipes.lipsync.jaw import JawModel
from a2v.recipes.lipsync.mouth_loss import discriminator_loss, total_generator_loss
from a2v.recipes.lipsync.mouth_model import build_discriminator, build_generator
from a2v.train import Task, TrainConfig, fit

__all__ = ["MouthTask", "train_mouth", "model_config", "window_metrics", "RUN_FORMAT"]

RUN_FORMAT = "a2v.lipsync_run/1"


def model_config(cfg: LipSyncConfig, arch: str) -> LipSyncConfig:
    """``cfg`` with ``model.arch = arch`` (one of tcn_gan, tcn, lstm, bilstm)."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown lip-sync model '{arch}' (choose {', '.join(ARCHS)})")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch=arch))


@torch.no_grad()
def window_metrics(model: torch.nn.Module, data: WindowDataset, batch: int = 64) -> dict[str, float]:
    """MSE, MAE and inter-frame MSE of ``model`` over every window of ``data`` (mouth PCA units)."""
    dev = next(model.parameters()).device
    sums = {"mse": 0.0, "mae": 0.0, "inter_mse": 0.0}
    n = 0
    for k in range(0, len(data), batch):
        items = [data[i] for i in range(k, min(k + batch, len(data)))]
        x = torch.stack([b["mfcc"] for b in items]).to(dev)  # (B,4W,13)
        y = torch.stack([b["mouth"] for b in items]).to(dev)  # (B,W,10)
        p = model(x).float()  # (B,4W,13)->(B,W,10)
        sums["mse"] += float(((p - y) ** 2).mean((1, 2)).sum())
        sums["mae"] += float((p - y).abs().mean((1, 2)).sum())
        sums["inter_mse"] += float(((p.diff(dim=1) - y.diff(dim=1)) ** 2).mean((1, 2)).sum())
        n += len(items)
    return {k: v / max(n, 1) for k, v in sums.items()}


class MouthTask(Task):
    """One stage 1 model for :func:`a2v.train.fit`. Batch: {"mfcc": (B,4W,13), "mouth": (B,W,10), ...}.

    Baselines (tcn, lstm, bilstm): ``loss = reg + inter`` (weights ``model.reg_weight``/``inter_weight``),
    one Adam. GAN (tcn_gan): per batch a discriminator step on (audio, real) vs (audio, detached
    fake), then a generator step with ``+ adv_weight * adversarial`` through the frozen
    discriminator; Adam each (``train.lr`` for G, ``gan_lr_d`` for D).
    """

    def __init__(self, cfg: LipSyncConfig) -> None:
        self.cfg = cfg
        self.g = build_generator(cfg.model)
        self.d = build_discriminator(cfg.model)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"g": self.g} if self.d is None else {"g": self.g, "d": self.d}

    def optimizers(self, modules: dict[str, torch.nn.Module], cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        def adam(m: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
            return torch.optim.Adam(m.parameters(), lr=lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)

        opts = {"g": adam(modules["g"], cfg.lr)}
        if "d" in modules:
            opts["d"] = adam(modules["d"], self.cfg.gan_lr_d)
        return opts

    def step(self, batch: dict, ctx: Any) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        x, y = batch["mfcc"], batch["mouth"]  # (B,4W,13), (B,W,10)
        fake = ctx.modules["g"](x)  # (B,4W,13)->(B,W,10)
        weights = {"reg_weight": m.reg_weight, "inter_weight": m.inter_weight, "adv_weight": m.adv_weight}
        if "d" not in ctx.modules:
            return total_generator_loss(fake, y, **weights)
        d = ctx.modules["d"]
        loss_d = discriminator_loss(d(x, y), d(x, fake.detach()), m.gan_loss)  # (B,1) logits each
        ctx.backward(loss_d)
        ctx.optimizer_step("d")
        with ctx.frozen("d"):
            out = total_generator_loss(fake, y, ctx.unwrap("d")(x, fake), gan_loss=m.gan_loss, **weights)
        ctx.backward(out["loss"])
        ctx.optimizer_step("g")
        return {"loss": out["loss"].detach(), "reg": out["reg"], "inter": out["inter"], "adv": out["adv"],
                "d_loss": loss_d.detach()}

    def evaluate(self, data: WindowDataset, ctx: Any) -> dict[str, float]:
        return window_metrics(ctx.eval_modules["g"], data, self.cfg.eval.batch_windows)


def _fit_jaw(items: Sequence) -> JawModel | None:
    lm = np.concatenate([it.landmarks for it in items])  # (sum F,68,2)
    try:
        return JawModel().fit(lm)
    except InputError:
        return None


def train_mouth(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: LipSyncConfig,
    models: Sequence[str] = ("tcn_gan", "tcn", "lstm", "bilstm"),
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Train the stage 1 ``models`` on ``data_dir`` and export each to ``out_dir/<model>/``.

    ``data_dir``: a dataset from ``a2v prepare lipsync`` (mfcc.npy (T,13) 100 Hz, landmarks.npy
    (F,68,2) 25 fps) or a folder of talking-face videos (landmarks computed here and cached in
    ``out_dir/items``). The held-out items (``cfg.data.holdout_ids`` / ``holdout_fraction``)
    are left out of the PCA, the statistics and training. ``resume``: continue every model from
    its last checkpoint (a finished model is re-exported as is). Returns {model: pipeline folder}.
    """
    from a2v.cliutil import console
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    models = list(dict.fromkeys(models))
    for m in models:
        model_config(cfg, m)  # validates the name before any work
    out = Path(out_dir)
    items = load_items(data_dir, cfg.data, cache_dir=out / "items", progress=progress)
    train_items, held = split_items(items, cfg.data)
    features = MouthFeatures(cfg.data).fit(train_items)
    train_seqs = features.encode(train_items, features.speakers)
    held_seqs = features.encode(held)  # a new (held-out) speaker is standardised with its own statistics
    w = cfg.data.window_video_frames
    train_ds = WindowDataset(train_seqs, w, cfg.data.train_hop_video_frames)
    eval_ds = WindowDataset(held_seqs, w, cfg.data.eval_hop_video_frames)
    if len(train_ds) == 0:
        raise InputError(f"no training window of {w} video frames with a face in {data_dir} "
                         f"({len(train_items)} training items, {train_ds.n_dropped} windows without a face, "
                         f"{len(train_ds.short_ids)} items shorter than a window)")
    jaw = _fit_jaw(train_items)
    ev = features.pca.explained_variance_ratio_
    run: dict[str, Any] = {
        "format": RUN_FORMAT,
        "data_dir": str(Path(data_dir).resolve()),
        "train_ids": [it.id for it in train_items],
        "holdout_ids": [it.id for it in held],
        "n_speakers_train": len(features.speakers),
        "pca_explained_variance_ratio": [float(v) for v in ev],
        "pca_explained_variance_total": float(np.sum(ev)),
        "train_windows": len(train_ds),
        "train_windows_without_face": train_ds.n_dropped,
        "train_items_too_short": train_ds.short_ids,
        "eval_windows": len(eval_ds),
        "eval_windows_without_face": eval_ds.n_dropped,
        "jaw_r2": None if jaw is None else jaw.r2_,
        "models": {},
        "config": to_dict(cfg),
    }
    if resume and (out / "run.json").is_file():  # keep the records of models not retrained now
        import json

        run["models"] = json.loads((out / "run.json").read_text(encoding="utf-8")).get("models", {})
    console.print(f"lipsync stage 1: {len(train_items)} training / {len(held)} held-out items, "
                  f"{len(train_ds)} training windows ({train_ds.n_dropped} without a face left out), "
                  f"PCA {cfg.data.pca_components} comps explain {100 * float(np.sum(ev)):.1f}% of the variance")
    result: dict[str, Path] = {}
    for arch in models:
        mcfg = model_config(cfg, arch)
        task = MouthTask(mcfg)
        t0 = time.perf_counter()
        res = fit(task, train_ds, mcfg.train, out / arch / "train", eval_data=eval_ds if len(eval_ds) else None,
                  resume=resume, progress=progress, run_config=mcfg)
        seconds = time.perf_counter() - t0
        if mcfg.train.ema_decay > 0 and res.last_checkpoint is not None:
            from a2v.train import load_modules

            load_modules(res.last_checkpoint, {"g": task.g}, ema=True, device=next(task.g.parameters()).device)
        pipe = LipSyncPipeline(task.g.cpu(), mcfg, features, jaw)
        result[arch] = pipe.save_pretrained(out / arch)
        run["models"][arch] = {"steps": res.step, "train_seconds": seconds,
                               "n_params": sum(p.numel() for p in task.g.parameters()),
                               "train_metrics": res.train_metrics, "eval_metrics": res.eval_metrics}
        write_json_atomic(out / "run.json", run)
        console.print(f"  {arch}: {res.step} steps in {seconds:.1f} s -> {result[arch]}")
    return result
