"""Training steps of the tongue recipe on the shared loop (:func:`a2v.train.fit`).

- :class:`DiffusionStageTask`: one cascade stage (or the single-stage model): EDM loss
  (Karras et al. 2022, Sec. 5) with condition dropout for classifier-free guidance; stage 1 gets
  the clip's own low-res version, upsampled and noise-augmented (Ho et al. 2022, CDM Sec. 4.1).
- :class:`DNNTask`: the frame-wise DNN baseline (Porras et al. 2019), MSE.

:func:`train_tongue` builds the data and the model from a :class:`TongueConfig` and runs one stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from a2v.config import save_json
from a2v.diffusion import EDMLoss, augment_condition, random_aug_sigma
from a2v.io import write_json_atomic
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.data import TongueClips, collate_clips, load_prepared, split_for
from a2v.recipes.tongue.model import ConditionEncoder, FrameDNN, build_denoiser, lowres_condition
from a2v.train import Task, TrainResult, fit

__all__ = ["DiffusionStageTask", "DNNTask", "train_tongue"]


class DiffusionStageTask(Task):
    """EDM training of one stage: batch {"video" (B,1,F,S,S) in [-1,1], "audio" (B,F,Da), "text", "text_mask"}."""

    ema_modules = ("denoiser",)

    def __init__(self, cfg: TongueConfig, denoiser: nn.Module, stage: int) -> None:
        self.cfg, self.denoiser, self.stage = cfg, denoiser, stage
        e = cfg.edm
        self.loss = EDMLoss(e.P_mean, e.P_std, e.sigma_data, e.cond_dropout_prob)

    def modules(self) -> dict[str, nn.Module]:
        return {"denoiser": self.denoiser}

    def step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, torch.Tensor]:
        den = ctx.modules["denoiser"]
        net = ctx.unwrap("denoiser").net
        y = batch["video"]  # (B,1,F,S,S)
        cond = net.encode_condition(batch["audio"], batch.get("text"), batch.get("text_mask"))  # (B,F,D)|None
        kw: dict[str, torch.Tensor] = {}
        if net.uses_lowres:
            low = lowres_condition(y, self.cfg.cascade.stage0_size_px)  # (B,1,F,S,S)
            sig = random_aug_sigma(y.shape[0], self.cfg.cascade.aug_sigma_max, y.device)  # (B,)
            kw["lowres"], kw["aug_level"] = augment_condition(low, sig)
        loss = self.loss(den, y, cond, null_cond=ctx.unwrap("denoiser").null_cond, **kw)
        return {"loss": loss}

    def evaluate(self, data: Any, ctx: Any) -> dict[str, float]:
        """Mean EDM loss on held-out clips at fixed noise levels (0.05, 0.5, 5), no dropout."""
        den = ctx.eval_modules["denoiser"]
        e = self.cfg.edm
        loss = EDMLoss(e.P_mean, e.P_std, e.sigma_data, 0.0)
        g = torch.Generator(device="cpu").manual_seed(0)
        total, n = 0.0, 0
        for i in range(0, len(data), 4):
            batch = collate_clips([data[j] for j in range(i, min(i + 4, len(data)))])
            batch = {k: v.to(ctx.device) for k, v in batch.items()}
            y = batch["video"]
            cond = den.net.encode_condition(batch["audio"], batch.get("text"), batch.get("text_mask"))
            kw = {}
            if den.net.uses_lowres:
                kw = {"lowres": lowres_condition(y, self.cfg.cascade.stage0_size_px),
                      "aug_level": torch.full((y.shape[0],), -2.0, device=y.device)}
            for s in (0.05, 0.5, 5.0):
                sig = torch.full((y.shape[0],), s, device=y.device)
                total += float(loss(den, y, cond, generator=g, sigma=sig, **kw)) * y.shape[0]
                n += y.shape[0]
        return {"edm_loss": total / max(n, 1)}


class DNNTask(Task):
    """Frame-wise regression baseline: MSE between FrameDNN(audio) and the video."""

    def __init__(self, net: FrameDNN) -> None:
        self.net = net

    def modules(self) -> dict[str, nn.Module]:
        return {"dnn": self.net}

    def step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, torch.Tensor]:
        return {"loss": F.mse_loss(ctx.modules["dnn"](batch["audio"]), batch["video"])}

    def evaluate(self, data: Any, ctx: Any) -> dict[str, float]:
        net = ctx.eval_modules["dnn"]
        b = collate_clips([data[i] for i in range(len(data))])
        return {"mse": float(F.mse_loss(net(b["audio"].to(ctx.device)), b["video"].to(ctx.device)))}


def train_tongue(cfg: TongueConfig, data_dir: str | Path, out_dir: str | Path, stage: int = 0,
                 conditional: bool = True, resume: bool = False, progress: bool = True,
                 device: str | torch.device = "cpu", encoder: ConditionEncoder | None = None) -> TrainResult:
    """Train ``stage`` (0 / 1 of the cascade; 0 for single-stage and DNN) on a prepared folder into ``out_dir``.

    Writes ``out_dir/checkpoints`` (safetensors + JSON) and ``out_dir/model.json``
    (stage, model kind, condition widths) used by :class:`~a2v.recipes.tongue.pipeline.TonguePipeline`.
    ``conditional=False`` trains the unconditional model (the reference for the conditioning test).
    """
    from dataclasses import replace

    from a2v.recipes.tongue.data import corpus_language

    cfg = replace(cfg, cond=cfg.cond.resolved(corpus_language(Path(data_dir))))  # saved settled: auto -> en / zh
    utts = load_prepared(Path(data_dir))
    train_names, held_names = split_for(Path(data_dir), utts, cfg.data)
    enc = encoder or ConditionEncoder.from_config(cfg.cond, device)
    size = cfg.stage_size(stage)
    train_set = TongueClips([u for u in utts if u.name in train_names], cfg.data.clip_frames, size, enc)
    held = [u for u in utts if u.name in held_names]
    eval_set = TongueClips(held, cfg.data.clip_frames, size, enc) if held else None
    if cfg.model == "dnn":
        b = cfg.baseline
        task: Task = DNNTask(FrameDNN(enc.audio_dim, size, b.context_frames, b.hidden, b.dropout))
    else:
        task = DiffusionStageTask(cfg, build_denoiser(cfg, enc.audio_dim, enc.text_dim, stage, conditional), stage)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_json(cfg, out / "tongue_config.json")
    write_json_atomic(out / "model.json", {"stage": stage, "model": cfg.model, "conditional": conditional,
                                           "audio_dim": enc.audio_dim, "text_dim": enc.text_dim, "size_px": size,
                                           "train_clips": len(train_set), "too_short": train_set.too_short})
    return fit(task, train_set, cfg.train, out, eval_data=eval_set, collate_fn=collate_clips, resume=resume,
               progress=progress, run_config=cfg)
