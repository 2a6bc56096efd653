"""Stage ``invert`` of the talk recipe: W+ of every frame of every prepared clip -> ``RUN/latents``.

Clips are inverted in groups of ``invert.max_batch`` (a2v.gan.invert.invert_sequences, batched over the
clips of a group, and over their frames with ``invert.later_init=first``). Each group's clip files and the
latent index are written atomically when the group is done, so an interrupted stage resumes
(``run_invert(..., resume=True)``, ``a2v talk train --stage invert --resume``) with the clips not yet done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a2v.device import resolve_device
from a2v.errors import ConfigError, InputError
from a2v.recipes.talk.config import TalkConfig
from a2v.recipes.talk.data import Clip, LatentStore, frames_to_tensor


def say(msg: str) -> None:
    from a2v.cliutil import console

    console.print(msg)


def build_generator(cfg: TalkConfig, device: str | torch.device = "cpu") -> nn.Module:
    """The configured style generator (a2v.gan.stylegan.load_generator), frozen, in eval mode."""
    from a2v.gan.stylegan import load_generator

    g = cfg.generator
    G = load_generator(g.kind, g.path, code_dir=g.code_dir or None, trust_pickle=g.trust_pickle, builtin=g.builtin,
                       device=device)
    return G.eval().requires_grad_(False)


def build_inversion_loss(cfg: TalkConfig, device: str | torch.device = "cpu") -> nn.Module:
    """Per-image MSE + lpips_weight * LPIPS (a2v.gan.invert.ReconstructionLoss); LPIPS only when its weight > 0."""
    from a2v.gan.invert import ReconstructionLoss

    inv = cfg.invert
    lp = None
    if inv.lpips_weight > 0:
        from a2v.metrics import build_lpips

        lp = build_lpips(inv.lpips_net, inv.lpips_weights_path or None, device)
    return ReconstructionLoss(lp, inv.mse_weight, inv.lpips_weight).to(device)


def build_init_encoder(cfg: TalkConfig, G: nn.Module, device: str | torch.device = "cpu") -> nn.Module | None:
    """The first-frame initialisation encoder (a2v.gan.invert.LatentEncoder) when ``invert.init=encoder``, else None."""
    inv = cfg.invert
    if inv.init != "encoder":
        return None
    from a2v.gan.invert import LatentEncoder

    return LatentEncoder.load(inv.encoder_path, G.num_ws, G.w_dim, trust=inv.trust_encoder, device=device)


@torch.no_grad()
def random_start(G: nn.Module, keys: Sequence[str], seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """Paper sec. 3.1 start of a first-frame inversion: w = mapping(z) of a random z ~ N(0, I), in every W+ row.

    One z per key (a clip id, "photo"), drawn from a generator seeded by ``seed`` and the key, so the start of a
    clip does not depend on which clips share its batch. Returns float32 (N,num_ws,w_dim) on ``device``.
    """
    import zlib

    zs = [torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(zlib.crc32(f"{seed}:{k}".encode())))
          for k in keys]  # N x (1,z_dim); CPU generators keep 32 bits of a seed
    z = torch.cat(zs).to(device)  # (N,z_dim)
    return G.mapping(z).detach().float()  # (N,z_dim)->(N,num_ws,w_dim)


def first_frame_start(cfg: TalkConfig, G: nn.Module, keys: Sequence[str], encoder: nn.Module | None = None,
                      device: str | torch.device = "cpu") -> torch.Tensor | nn.Module | None:
    """The ``init`` of a2v.gan.invert.invert_sequences for ``invert.init``: random w (paper; tensor
    (N,num_ws,w_dim)), None (``w_avg``) or the encoder."""
    inv = cfg.invert
    if inv.init == "random":
        return random_start(G, keys, inv.seed, device)
    if inv.init == "encoder":
        return encoder
    return None


@torch.no_grad()
def _pixel_mse(G: nn.Module, ws: torch.Tensor, target: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Per-frame MSE of synthesis(ws) vs target on [-1,1] images: ws (F,num_ws,w_dim), target (F,3,R,R) -> (F,)."""
    out = [(G.synthesis(ws[a : a + batch].to(device)) - target[a : a + batch].to(device)).pow(2).flatten(1).mean(1)
           for a in range(0, ws.shape[0], batch)]  # (b,3,R,R)->(b,)
    return torch.cat(out).cpu()


def invert_clips(cfg: TalkConfig, clips: Sequence[Clip], G: nn.Module, loss_fn: nn.Module,
                 device: str | torch.device = "cpu", progress: bool = True,
                 encoder: nn.Module | None = None) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Invert every frame of ``clips`` (paper schedule, batched over clips, over frames too with
    ``invert.later_init=first``; a2v.gan.invert.invert_sequences); first frames start from ``invert.init``
    (:func:`first_frame_start`); ``encoder``: the one of ``invert.init=encoder``.

    Returns [(id, {"ws" (F,num_ws,w_dim), "loss" (F,), "mse" (F,), "audio" (S,)})].
    """
    from a2v.gan.invert import invert_sequences

    inv, dev = cfg.invert, torch.device(device)
    targets = [frames_to_tensor(c.frames, G.resolution) for c in clips]  # (F,H,W,3)->(F,3,R,R) each
    res = invert_sequences(G, targets, loss_fn, first_steps=inv.first_steps, first_lr=inv.first_lr,
                           first_lr_final=inv.first_lr_final, later_steps=inv.later_steps, later_lr=inv.later_lr,
                           frames_per_step=inv.frames_per_step, later_init=inv.later_init,
                           init=first_frame_start(cfg, G, [c.id for c in clips], encoder, dev),
                           max_batch=inv.max_batch, device=dev, progress=progress)
    out = []
    for c, t, r in zip(clips, targets, res, strict=True):
        mse = _pixel_mse(G, r.ws, t, inv.max_batch, dev)
        out.append((c.id, {"ws": r.ws, "loss": r.loss, "mse": mse, "audio": torch.from_numpy(c.audio)}))
    return out


def invert_settings(cfg: TalkConfig, G: nn.Module) -> dict[str, Any]:
    """What the inverted latents depend on (kept in the latent index; ``--resume`` needs them unchanged)."""
    from a2v.config import to_dict

    inv = {k: v for k, v in to_dict(cfg.invert).items() if k not in ("max_clips", "max_batch", "trust_encoder")}
    d = {"invert": inv, "generator": to_dict(cfg.generator), "num_ws": int(G.num_ws), "w_dim": int(G.w_dim)}
    return json.loads(json.dumps(d))  # tuples -> lists, as read back from JSON


def _resume_rows(lat: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index rows of the clips already inverted in ``lat`` with the same settings (files present)."""
    from a2v.recipes.talk.data import INDEX, read_latent_index

    if not (lat / INDEX).is_file():
        return {}
    index = read_latent_index(lat)
    old = index.get("settings", {})
    if old != settings:
        diff = sorted(f"{sec}.{k}" for sec in ("invert", "generator") for k in set(old.get(sec, {})) | set(settings[sec])
                      if old.get(sec, {}).get(k) != settings[sec].get(k))
        raise ConfigError(f"{lat} was inverted with other settings ({', '.join(diff) or 'generator size'}): use the "
                          "same config to --resume, or run without --resume to start over")
    return {r["id"]: r for r in index["clips"] if (lat / f"{r['id']}.safetensors").is_file()}


def run_invert(cfg: TalkConfig, data_dir: str | Path, run_dir: str | Path, *, clips: Sequence[Clip] | None = None,
               generator: nn.Module | None = None, progress: bool = True, resume: bool = False) -> LatentStore:
    """Stage ``invert``: prepared dataset ``data_dir`` (or in-memory ``clips``) -> ``run_dir/latents``.

    Clips are inverted in groups of ``invert.max_batch`` clips (frame t of every clip of a group in one batch);
    each group's files and the index are written when the group is done. ``resume``: clips already in
    ``run_dir/latents`` (same settings) are skipped; the built-in generator saved in ``run_dir/generator`` is
    reused. Without ``resume`` every clip is inverted again.
    """
    from a2v.gan.stylegan import GENERATOR_CONFIG, SmallStyleGenerator

    run_dir, dev = Path(run_dir), resolve_device(cfg.device)
    lat = run_dir / "latents"
    if generator is not None:
        G = generator
    elif resume and (run_dir / "generator" / GENERATOR_CONFIG).is_file():
        G = run_generator(cfg, run_dir)
    else:
        G = build_generator(cfg, dev)
    G = G.to(dev)
    if isinstance(G, SmallStyleGenerator):  # later stages, the pipeline and --resume use exactly this generator
        G.save_pretrained(run_dir / "generator")
    loss_fn = build_inversion_loss(cfg, dev)
    encoder = build_init_encoder(cfg, G, dev)
    settings = invert_settings(cfg, G)
    rows = _resume_rows(lat, settings) if resume else {}
    if rows:
        say(f"resume: {len(rows)} clips already inverted in {lat}; they are skipped")
    if clips is None:
        from a2v.recipes.talk.data import iter_prepared_clips

        clips_it = iter_prepared_clips(data_dir, cfg.invert.max_clips)
    else:
        clips_it = iter(clips)
    order: list[str] = []
    group: list[Clip] = []
    fps, sr = None, cfg.audio.sample_rate_hz
    n_new = n_skipped = 0

    def save_index(complete: bool) -> None:
        LatentStore.write_index(lat, [rows[i] for i in order if i in rows], fps, sr, G.num_ws, G.w_dim,
                                complete=complete, settings=settings)

    def flush() -> None:
        for cid, tensors in invert_clips(cfg, group, G, loss_fn, dev, progress, encoder):
            rows[cid] = LatentStore.write_clip(lat, cid, tensors)
        save_index(complete=False)
        group.clear()

    for clip in clips_it:
        if fps is not None and abs(clip.fps - fps) > 1e-6:
            raise InputError(f"clip {clip.id} is at {clip.fps} fps, earlier clips at {fps}: prepare with one fps")
        fps = clip.fps
        if clip.id in order:
            raise InputError(f"clip id {clip.id} occurs twice in {data_dir}")
        order.append(clip.id)
        if clip.id in rows:
            n_skipped += 1
            continue
        group.append(clip)
        n_new += 1
        if len(group) == cfg.invert.max_batch:
            flush()
    if group:
        flush()
    if not order:
        raise InputError(f"no clips to invert in {data_dir}")
    save_index(complete=True)
    store = LatentStore(lat)
    mse = torch.cat([store.clip(i)["mse"] for i in store.ids])
    psnr = float((10 * torch.log10(4.0 / mse.clamp_min(1e-12))).mean())  # [-1,1] images: peak-to-peak 2
    say(f"inverted {n_new} clips ({n_skipped} skipped, already done), {len(store.ids)} clips / {mse.numel()} frames "
        f"in all: mean PSNR {psnr:.2f} dB -> {store.path}")
    return store


def run_generator(cfg: TalkConfig, run_dir: str | Path) -> nn.Module:
    """The generator of a run: the built-in one saved by the invert stage (``run_dir/generator``), else the
    configured one."""
    from a2v.gan.stylegan import GENERATOR_CONFIG, SmallStyleGenerator

    saved = Path(run_dir) / "generator"
    if (saved / GENERATOR_CONFIG).is_file():
        return SmallStyleGenerator.from_pretrained(saved).eval().requires_grad_(False)
    return build_generator(cfg)


