"""Training stages of the talk recipe, each resumable on its own, in one run folder::

    RUN/latents/      invert     W+ of every frame of every prepared clip (+ audio), see data.LatentStore
                                 and recipes.talk.invert (resumable clip by clip)
    RUN/vae/          vae        a2v.train run of the VAE on normalised offsets; normalizer.json
    RUN/embed2lat/    embed2lat  a2v.train run of Embed2Lat (wav2vec2 features -> VAE means)
    RUN/pipeline/     exported after embed2lat: TalkPipeline.from_pretrained(RUN / "pipeline")

``run_stage(cfg, "all", data_dir, run_dir)`` runs the three in order.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a2v.device import resolve_device
from a2v.errors import ConfigError, InputError
from a2v.io import write_json_atomic
from a2v.nn.vae import MLPVAE, vae_loss
from a2v.recipes.talk.config import TalkConfig
from a2v.recipes.talk.data import (
    FrameDataset,
    LatentStore,
    Normalizer,
    WindowDataset,
    collate_padded,
    load_offsets,
    split_ids,
)
from a2v.recipes.talk.invert import (  # noqa: F401 - the invert stage, re-exported
    build_generator,
    build_init_encoder,
    build_inversion_loss,
    invert_clips,
    run_generator,
    run_invert,
    say,
)
from a2v.recipes.talk.model import Embed2Lat
from a2v.train import Task, TrainConfig, fit
from a2v.train.task import StepContext

STAGES = ("invert", "vae", "embed2lat", "all")


# --- builders ---------------------------------------------------------------------------------------


def build_vae(cfg: TalkConfig, w_dim: int) -> MLPVAE:
    return MLPVAE(cfg.vae_dims(w_dim))


def _fit_batch(tcfg: TrainConfig, n_items: int, what: str) -> TrainConfig:
    """``tcfg`` with batch_size lowered to the number of items when the data is smaller than one batch."""
    if n_items < 1:
        raise InputError(f"no {what} to train on")
    if n_items < tcfg.batch_size:
        say(f"{what}: {n_items} items < batch_size {tcfg.batch_size}; using batch_size {n_items}")
        return dataclasses.replace(tcfg, batch_size=n_items)
    return tcfg


# --- stage 2: VAE -----------------------------------------------------------------------------------


class VAETask(Task):
    """MSE + kl_weight * KL on normalised offsets (B,D) (a2v.nn.vae.vae_loss); eval: reconstruction MSE from mu."""

    def __init__(self, vae: MLPVAE, kl_weight: float) -> None:
        self.vae, self.kl_weight = vae, kl_weight

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae}

    def step(self, batch: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        recon, mu, logvar = ctx.modules["vae"](batch)  # (B,D)->(B,D),(B,Z),(B,Z)
        loss, parts = vae_loss(recon, batch, mu, logvar, self.kl_weight)
        return {"loss": loss, **parts}

    def evaluate(self, data: torch.Tensor, ctx: StepContext) -> dict[str, float]:
        vae = ctx.eval_modules["vae"]
        x = data.to(ctx.device)  # (N,D)
        recon, _, _ = vae(x, sample=False)
        return {"val_mse": float((recon - x).pow(2).mean())}


def _offset_sets(cfg: TalkConfig, store: LatentStore) -> tuple[list[str], list[str], dict[str, torch.Tensor]]:
    train_ids, val_ids = split_ids(store.ids, cfg.embed2lat.val_fraction)
    return train_ids, val_ids, load_offsets(store, cfg.latents.layers)


def run_vae(cfg: TalkConfig, run_dir: str | Path, *, progress: bool = True, resume: bool = False) -> Path:
    """Stage ``vae``: ``run_dir/latents`` -> ``run_dir/vae`` (a2v.train run + normalizer.json); returns that folder."""
    run_dir = Path(run_dir)
    store = LatentStore(run_dir / "latents")
    train_ids, val_ids, offs = _offset_sets(cfg, store)
    x = torch.cat([offs[i] for i in train_ids])  # (N,D)
    norm = Normalizer.fit(x)
    out = run_dir / "vae"
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "normalizer.json", norm.to_dict())
    tcfg = _fit_batch(cfg.vae.train, x.shape[0], "VAE frames")
    if cfg.vae.epochs > 0:
        tcfg = dataclasses.replace(tcfg, max_steps=cfg.vae.epochs * max(1, x.shape[0] // tcfg.batch_size))
    val = norm(torch.cat([offs[i] for i in val_ids])) if val_ids else None  # (N_val,D)
    if val is None and tcfg.best_metric:
        tcfg = dataclasses.replace(tcfg, best_metric="")
    vae = build_vae(cfg, store.index["w_dim"])
    fit(VAETask(vae, cfg.vae.kl_weight), FrameDataset(norm(x)), tcfg, out, eval_data=val, resume=resume,
        progress=progress, run_config=cfg)
    return out


def load_trained_vae(cfg: TalkConfig, vae_dir: str | Path, w_dim: int) -> tuple[MLPVAE, Normalizer]:
    """The VAE of a finished ``vae`` stage (best checkpoint, else the latest) and its normalizer."""
    vae = build_vae(cfg, w_dim)
    _load_run(Path(vae_dir), {"vae": vae})
    n = json.loads((Path(vae_dir) / "normalizer.json").read_text(encoding="utf-8"))
    return vae.eval(), Normalizer(float(n["mean"]), float(n["std"]))


def _load_run(run: Path, modules: dict[str, nn.Module]) -> Path:
    from a2v.train import best_checkpoint, latest_checkpoint, load_modules

    ck = best_checkpoint(run) or latest_checkpoint(run)
    if ck is None:
        raise InputError(f"no checkpoint in {run}: run that training stage first")
    load_modules(ck, modules, ema=True)
    return ck


# --- stage 3: Embed2Lat -----------------------------------------------------------------------------


class Embed2LatTask(Task):
    """MSE between Embed2Lat's codes and the VAE means on training items (whole clips or windows,
    ``window_frames``); eval: the same MSE on held-out clips run the same way (model.predict_clip_codes)."""

    def __init__(self, net: Embed2Lat, window_frames: int = 0, feat_rate_hz: float = 50.0, fps: float = 25.0) -> None:
        self.net, self.window_frames, self.feat_rate_hz, self.fps = net, window_frames, feat_rate_hz, fps

    def modules(self) -> dict[str, nn.Module]:
        return {"embed2lat": self.net}

    def step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        codes, mask = batch["codes"], batch["mask"]  # (B,W,Z), (B,W)
        pred = ctx.modules["embed2lat"](batch["feats"], codes.shape[1], batch["feat_mask"])  # (B,Tw,D)->(B,W,Z)
        err = (pred - codes).pow(2).mean(-1)  # (B,W,Z)->(B,W)
        loss = (err * mask).sum() / mask.sum().clamp_min(1)
        return {"loss": loss}

    def evaluate(self, data: list[tuple[torch.Tensor, torch.Tensor]], ctx: StepContext) -> dict[str, float]:
        return {"val_mse": embed2lat_mse(ctx.eval_modules["embed2lat"], data, self.window_frames, self.feat_rate_hz,
                                         self.fps)}


@torch.no_grad()
def embed2lat_mse(net: Embed2Lat, data: list[tuple[torch.Tensor, torch.Tensor]], window_frames: int,
                  feat_rate_hz: float = 50.0, fps: float = 25.0) -> float:
    """Validation MSE (paper: 0.273): mean over every frame of ``data`` = [(feats (T,D), codes (F,Z))] of the
    squared error averaged over the Z code dimensions, each clip run as in training (whole or windows)."""
    from a2v.recipes.talk.model import predict_clip_codes

    errs = [(predict_clip_codes(net, f, c.shape[0], window_frames, feat_rate_hz, fps).cpu() - c.cpu()).pow(2).mean(-1)
            for f, c in data]  # (F,Z)->(F,) per clip
    return float(torch.cat(errs).mean())


def build_speech_encoder(cfg: TalkConfig, device: str | torch.device = "cpu") -> nn.Module:
    from a2v.encoders import SpeechEncoder

    layer: str | int = int(cfg.audio.layer) if cfg.audio.layer.lstrip("-").isdigit() else cfg.audio.layer
    return SpeechEncoder.from_pretrained(cfg.audio.encoder, layer=layer, device=device, progress=False)


@torch.no_grad()
def encode_speech(encoder: nn.Module, wav: torch.Tensor) -> torch.Tensor:
    """wav float32 (S,) 16 kHz -> features float32 (T,D) at 50 Hz on the CPU."""
    return encoder(wav.float()).float().cpu()  # (S,)->(T,D)


def run_embed2lat(cfg: TalkConfig, run_dir: str | Path, *, encoder: nn.Module | None = None, progress: bool = True,
                  resume: bool = False) -> Path:
    """Stage ``embed2lat``: latents + VAE -> ``run_dir/embed2lat``; returns that folder."""
    run_dir = Path(run_dir)
    store = LatentStore(run_dir / "latents")
    vae, norm = load_trained_vae(cfg, run_dir / "vae", store.index["w_dim"])
    dev = resolve_device(cfg.device)
    encoder = encoder if encoder is not None else build_speech_encoder(cfg, dev)
    train_ids, val_ids, offs = _offset_sets(cfg, store)
    feats, codes = {}, {}
    with torch.no_grad():
        for cid in store.ids:
            feats[cid] = encode_speech(encoder, store.clip(cid)["audio"])  # (S,)->(T,D)
            codes[cid] = vae.encode(norm(offs[cid]))[0]  # (F,D)->(F,Z) posterior means
    in_dim = next(iter(feats.values())).shape[1]
    e2l, rate = cfg.embed2lat, float(encoder.frame_rate_hz)
    ds = WindowDataset([feats[i] for i in train_ids], [codes[i] for i in train_ids], e2l.window_frames, rate, store.fps)
    tcfg = _fit_batch(cfg.embed2lat.train, len(ds), "Embed2Lat clips" if e2l.window_frames <= 0 else "Embed2Lat windows")
    val = [(feats[i], codes[i]) for i in val_ids] or None
    if val is None and tcfg.best_metric:
        tcfg = dataclasses.replace(tcfg, best_metric="")
    net = Embed2Lat(cfg.embed2lat, in_dim, cfg.vae.latent_dim)
    out = run_dir / "embed2lat"
    fit(Embed2LatTask(net, e2l.window_frames, rate, store.fps), ds, tcfg, out, eval_data=val, collate_fn=collate_padded,
        resume=resume, progress=progress, run_config=cfg)
    return out


def export_pipeline(cfg: TalkConfig, run_dir: str | Path, *, generator: nn.Module | None = None,
                    encoder: nn.Module | None = None) -> Path:
    """Assemble ``run_dir/pipeline`` (TalkPipeline.save_pretrained) from the finished stages."""
    from a2v.recipes.talk.pipeline import TalkPipeline

    run_dir = Path(run_dir)
    store = LatentStore(run_dir / "latents")
    vae, norm = load_trained_vae(cfg, run_dir / "vae", store.index["w_dim"])
    in_dim = _embed2lat_in_dim(run_dir / "embed2lat")
    net = Embed2Lat(cfg.embed2lat, in_dim, cfg.vae.latent_dim)
    _load_run(run_dir / "embed2lat", {"embed2lat": net})
    G = generator if generator is not None else run_generator(cfg, run_dir)
    pipe = TalkPipeline(G.cpu(), vae, net, norm, cfg, speech_encoder=encoder)
    return pipe.save_pretrained(run_dir / "pipeline")


def _embed2lat_in_dim(run: Path) -> int:
    from a2v.train import latest_checkpoint

    ck = latest_checkpoint(run)
    if ck is None:
        raise InputError(f"no checkpoint in {run}: run the embed2lat stage first")
    from safetensors import safe_open

    with safe_open(str(ck / "embed2lat.safetensors"), "pt") as f:
        return int(f.get_slice("proj.weight").get_shape()[1])


def run_stage(cfg: TalkConfig, stage: str, data_dir: str | Path | None, run_dir: str | Path, *,
              progress: bool = True, resume: bool = False, **kw: Any) -> Path:
    """Run one stage (or "all"); returns the stage's output folder (the pipeline folder after embed2lat/all)."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r} (choose one of {', '.join(STAGES)})")
    run_dir = Path(run_dir)
    if stage == "all" and kw.get("encoder") is None:  # a missing wav2vec2 fails now, not after inversion and VAE
        from a2v.encoders._hub import resolve_pretrained

        resolve_pretrained(cfg.audio.encoder, "speech encoder", "audio.encoder")
    if stage in ("invert", "all"):
        if data_dir is None:
            raise InputError("the invert stage needs --data (a folder from `a2v prepare talk`)")
        store = run_invert(cfg, data_dir, run_dir, generator=kw.get("generator"), progress=progress, resume=resume)
        if stage == "invert":
            return store.path
    if stage in ("vae", "all"):
        out = run_vae(cfg, run_dir, progress=progress, resume=resume)
        if stage == "vae":
            return out
    run_embed2lat(cfg, run_dir, encoder=kw.get("encoder"), progress=progress, resume=resume)
    return export_pipeline(cfg, run_dir, generator=kw.get("generator"), encoder=kw.get("encoder"))
