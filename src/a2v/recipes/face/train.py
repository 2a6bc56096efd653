"""Training of the three stages (each a :class:`a2v.train.Task` on the shared loop):

- ``encoder``: voice encoder, cosine distance to the true face embedding, LAMB at ``train_encoder.lr``
  (1e-3) x0.95 / 10k steps;
- ``decoder``: 64x64 DDPM eps loss, embedding dropped 10% (classifier-free guidance);
- ``sr``: super-resolution DDPM eps loss on (high-res, noise-augmented upsampled low-res, embedding) triples.

Decoder and SR (Table 1): LAMB at the peak LR ``train_<stage>.lr``, warmed up linearly from
``warmup_start_factor`` x peak over ``warmup_epochs`` epochs (the epoch length comes from the
training set: :attr:`DiffusionTask.steps_per_epoch`), then constant.

:func:`export_stage` copies a stage's (EMA) weights into a model folder that
:class:`a2v.recipes.face.pipeline.FacePipeline` loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from a2v.diffusion.ddpm import ddpm_training_loss, make_scheduler, q_sample
from a2v.errors import ConfigError
from a2v.recipes.face.config import FaceConfig
from a2v.recipes.face.decoder import FaceDecoder
from a2v.recipes.face.lamb import Lamb
from a2v.recipes.face.superres import SuperResUNet, upsample
from a2v.recipes.face.voice_encoder import VoiceEncoder, cosine_distance_loss, lr_lambda, n_freq_bins
from a2v.train import StepContext, Task, TrainConfig

Stage = Literal["encoder", "decoder", "sr"]
MODULE_NAMES = {"encoder": "voice_encoder", "decoder": "decoder", "sr": "superres"}


class EncoderTask(Task):
    """Voice encoder: batch {"spec": (B,2,T,D), "emb": (B,D)} -> cosine distance."""

    def __init__(self, cfg: FaceConfig) -> None:
        self.cfg = cfg
        self.net = VoiceEncoder(cfg.voice, cfg.embedding.dim, n_freq_bins(cfg.audio.n_fft))

    def modules(self) -> dict[str, nn.Module]:
        return {"voice_encoder": self.net}

    def optimizers(self, modules: dict[str, nn.Module], cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        # the LR is train_encoder.lr (cfg here), the schedule voice.lr_decay / lr_decay_every_steps
        return {"main": Lamb(modules["voice_encoder"].parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                             weight_decay=self.cfg.voice.weight_decay)}

    def schedulers(self, optimizers: dict[str, torch.optim.Optimizer], cfg: TrainConfig) -> dict[str, Any]:
        v = self.cfg.voice
        return {"main": torch.optim.lr_scheduler.LambdaLR(optimizers["main"], lr_lambda(v.lr_decay, v.lr_decay_every_steps))}

    def step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        pred = ctx.modules["voice_encoder"](batch["spec"])  # (B,2,T,D)->(B,E)
        return {"loss": cosine_distance_loss(pred, batch["emb"])}

    def evaluate(self, data: Any, ctx: StepContext) -> dict[str, float]:
        net = ctx.eval_modules["voice_encoder"]
        losses = [cosine_distance_loss(net(b["spec"].unsqueeze(0).to(ctx.device)), b["emb"][None].to(ctx.device))
                  for b in data]
        return {"cosine_distance": float(torch.stack(losses).mean())}


def warmup_lambda(start_factor: float, warmup_steps: int):  # noqa: ANN201 - a schedule function
    """LR factor at optimizer step s: ``start + (1 - start) * min(1, s / warmup_steps)`` (1 without warm-up)."""
    if warmup_steps <= 0:
        return lambda step: 1.0
    return lambda step: start_factor + (1.0 - start_factor) * min(1.0, step / warmup_steps)


class DiffusionTask(Task):
    """Shared optimiser and schedule of the decoder and SR stages (paper Table 1): LAMB or AdamW at
    ``cfg.lr``, linear warm-up from ``warmup_start_factor`` x over ``warmup_epochs`` epochs.

    ``steps_per_epoch`` (optimizer updates per pass over the training set) is set by
    :func:`train_stage` from the dataset; a warm-up in epochs without it is refused.
    """

    section = "decoder"
    steps_per_epoch: int | None = None

    def optimizers(self, modules: dict[str, nn.Module], cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        if getattr(self.cfg, self.section).optimizer == "lamb":
            return {"main": Lamb(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)}
        return {"main": torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)}

    def warmup_steps(self) -> int:
        """Warm-up length in optimizer steps: ``warmup_epochs * steps_per_epoch``."""
        sec = getattr(self.cfg, self.section)
        if sec.warmup_epochs <= 0:
            return 0
        if self.steps_per_epoch is None:
            raise ConfigError(f"{self.section}.warmup_epochs needs the epoch length: set task.steps_per_epoch "
                              "(train_stage does) or warmup_epochs=0")
        return int(round(sec.warmup_epochs * self.steps_per_epoch))

    def schedulers(self, optimizers: dict[str, torch.optim.Optimizer], cfg: TrainConfig) -> dict[str, Any]:
        sec = getattr(self.cfg, self.section)
        f = warmup_lambda(sec.warmup_start_factor, self.warmup_steps())
        return {n: torch.optim.lr_scheduler.LambdaLR(o, f) for n, o in optimizers.items()}


def steps_per_epoch(n_items: int, cfg: TrainConfig) -> int:
    """Optimizer updates per epoch of ``n_items`` (the loop drops the last partial batch)."""
    batches = n_items // cfg.batch_size
    if cfg.overfit_batches > 0:
        batches = min(batches, cfg.overfit_batches)
    return max(1, batches // cfg.grad_accum_steps)


class DecoderTask(DiffusionTask):
    """Face decoder: batch {"image": (B,3,64,64) in [-1,1], "emb": (B,D)} -> eps MSE with 10% null condition."""

    ema_modules = ("decoder",)
    section = "decoder"

    def __init__(self, cfg: FaceConfig) -> None:
        self.cfg = cfg
        self.net = FaceDecoder(cfg.decoder, cfg.embedding.dim)
        d = cfg.decoder
        self.sched = make_scheduler("ancestral", d.num_train_timesteps, d.beta_schedule)

    def modules(self) -> dict[str, nn.Module]:
        return {"decoder": self.net}

    def step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        null = ctx.unwrap("decoder").null_cond
        loss = ddpm_training_loss(ctx.modules["decoder"], batch["image"], batch["emb"], self.sched,
                                  self.cfg.decoder.cond_dropout_prob, null_cond=null)
        return {"loss": loss}


class SuperResTask(DiffusionTask):
    """Super-resolution: batch {"image": (B,3,S,S), "emb": (B,D)} -> eps MSE given the noise-augmented
    upsampled 64 px image and the face embedding."""

    ema_modules = ("superres",)
    section = "superres"

    def __init__(self, cfg: FaceConfig) -> None:
        self.cfg = cfg
        self.net = SuperResUNet(cfg.superres, cfg.embedding.dim)
        s = cfg.superres
        self.sched = make_scheduler("ancestral", s.num_train_timesteps, s.beta_schedule)

    def modules(self) -> dict[str, nn.Module]:
        return {"superres": self.net}

    def step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        s = self.cfg.superres
        hi = batch["image"]  # (B,3,S,S)
        low = F.interpolate(hi, size=(s.low_res_px, s.low_res_px), mode="area")  # (B,3,S,S)->(B,3,64,64)
        cond, aug_t = augment_low_res(upsample(low, s.image_size_px), self.sched, s.max_aug_level)
        net, emb = ctx.modules["superres"], batch.get("emb")
        loss = ddpm_training_loss(lambda x, t, c: net(x, t, c, aug_t, emb), hi, cond, self.sched)
        return {"loss": loss}


def augment_low_res(cond: torch.Tensor, sched: Any, max_level: float,
                    level: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise-conditioning augmentation (Ho et al. 2022, Cascaded Diffusion, Sec. 4.2).

    cond (B,3,S,S) -> (q_sample(cond, aug_t), aug_t int64 (B,)); aug_t ~ U[0, max_level * T) in
    training, or ``round(level * T)`` when ``level`` is given (sampling).
    """
    T, b = sched.config.num_train_timesteps, cond.shape[0]
    if level is None:
        hi = max(1, int(max_level * T))
        aug_t = torch.randint(0, hi, (b,), device=cond.device)  # (B,)
    else:
        aug_t = torch.full((b,), min(T - 1, int(round(level * T))), device=cond.device, dtype=torch.long)
    if level == 0.0:
        return cond, aug_t
    return q_sample(sched, cond, aug_t, torch.randn_like(cond)), aug_t


def make_task(cfg: FaceConfig, stage: Stage) -> Task:
    if stage == "encoder":
        return EncoderTask(cfg)
    if stage == "decoder":
        return DecoderTask(cfg)
    if stage == "sr":
        return SuperResTask(cfg)
    raise ValueError(f"unknown stage '{stage}' (choose encoder, decoder or sr)")


def stage_train_config(cfg: FaceConfig, stage: Stage) -> TrainConfig:
    return {"encoder": cfg.train_encoder, "decoder": cfg.train_decoder, "sr": cfg.train_sr}[stage]


def build_dataset(cfg: FaceConfig, stage: Stage, data: str | Path, embedder: Any = None,
                  progress: bool = True) -> Any:
    """The training set of a stage from a prepared talking-face dataset or a picture folder.

    ``embedder``: callable uint8 (N,H,W,3) -> (N,D) (default: :class:`FaceEmbedder` of ``cfg.embedding``).
    """
    from a2v.cliutil import console
    from a2v.recipes.face.data import (
        ImageEmbeddingDataset,
        SpeechEmbeddingDataset,
        read_faces,
        read_talking_faces,
    )

    if stage == "encoder":
        items = read_talking_faces(data, cfg.frames_per_clip)
    else:  # one size for every picture; large enough for the face embedding
        items = read_faces(data, cfg.frames_per_clip, max(cfg.superres.image_size_px, cfg.decoder.image_size_px))
    if embedder is None:
        from a2v.recipes.face.embedding import FaceEmbedder

        embedder = FaceEmbedder(cfg.embedding)
    items.embeddings = embedder(items.images)  # (N,H,W,3)->(N,D)
    if getattr(embedder, "n_undetected", 0):
        items.skipped["no face found (centre used)"] = embedder.n_undetected
    _report(items, console)
    if stage == "encoder":
        return SpeechEmbeddingDataset(items.wavs, items.embeddings, cfg.audio)
    size = cfg.superres.image_size_px if stage == "sr" else cfg.decoder.image_size_px
    return ImageEmbeddingDataset(items.images, size, items.embeddings if stage == "decoder" or
                                 cfg.superres.cross_attention else None)


def _report(items: Any, console: Any) -> None:
    """Always said (not only with progress on): how many pictures, what was skipped or approximated."""
    extra = "; ".join(f"{k}: {v}" for k, v in items.skipped.items())
    console.print(f"{len(items.images)} face pictures" + (f" ({extra})" if extra else ""))


def train_stage(cfg: FaceConfig, stage: Stage, data: str | Path, out_dir: str | Path, *,
                model_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                embedder: Any = None) -> Any:
    """Train one stage into ``out_dir`` (checkpoints) and export it to ``model_dir`` when given."""
    from a2v.train import fit

    task = make_task(cfg, stage)
    dataset = build_dataset(cfg, stage, data, embedder, progress)
    if isinstance(task, DiffusionTask):
        task.steps_per_epoch = steps_per_epoch(len(dataset), stage_train_config(cfg, stage))
    result = fit(task, dataset, stage_train_config(cfg, stage), out_dir, resume=resume, progress=progress,
                 run_config=cfg)
    if model_dir is not None and result.last_checkpoint is not None:
        export_stage(cfg, stage, result.last_checkpoint, model_dir)
    if stage == "decoder" and cfg.sample.check_faces > 0 and result.last_checkpoint is not None:
        check_trained_decoder(cfg, task, dataset, result.last_checkpoint, out_dir)
    return result


def check_trained_decoder(cfg: FaceConfig, task: Task, dataset: Any, ckpt_dir: str | Path,
                          out_dir: str | Path) -> dict[str, Any]:
    """Sample ``cfg.sample.check_faces`` faces from the exported (EMA when kept) decoder weights of
    ``ckpt_dir``, one per distinct training embedding, and say how many hold a detected face
    (:mod:`a2v.recipes.face.check`; also written to ``out_dir/face_check.{json,png}``)."""
    from a2v.cliutil import console
    from a2v.recipes.face.check import check_decoder, report_check
    from a2v.train import load_checkpoint

    net = task.modules()["decoder"]
    net.load_state_dict(load_checkpoint(ckpt_dir, ema=True)["decoder"])
    res = check_decoder(net, cfg, dataset.emb, cfg.sample.check_faces)
    console.print(report_check(res, f"{res['of']} samples of the trained decoder ({res['sampler']}, "
                                    f"w = {res['guidance']:g}, {res['seconds']:.0f} s)", out_dir), soft_wrap=True)
    return res


# The config sections each stage owns in a model folder's config.json; the rest is shared.
STAGE_SECTIONS = {"encoder": ("audio", "voice", "train_encoder"), "decoder": ("decoder", "sample", "train_decoder"),
                  "sr": ("superres", "train_sr")}


def merge_stage_config(existing: FaceConfig | None, cfg: FaceConfig, stage: Stage) -> FaceConfig:
    """The model folder's config after exporting ``stage`` trained with ``cfg``: this stage's
    sections from ``cfg``, the other stages' sections kept from ``existing``.

    The face embedding joins the stages: a stage trained on another embedding than the folder's
    is refused (ConfigError), as is a super-resolution input size that differs from the decoder's.
    """
    import dataclasses

    from a2v.config import to_dict

    if existing is None:
        return cfg
    if to_dict(existing.embedding) != to_dict(cfg.embedding):
        raise ConfigError(f"stage {stage} was trained with embedding {to_dict(cfg.embedding)} but the model "
                          f"folder holds stages trained with {to_dict(existing.embedding)}: export to a new folder "
                          "or train every stage with the same embedding")
    return dataclasses.replace(existing, **{k: getattr(cfg, k) for k in STAGE_SECTIONS[stage]})


def export_stage(cfg: FaceConfig, stage: Stage, ckpt_dir: str | Path, model_dir: str | Path) -> Path:
    """Copy a checkpoint's weights of ``stage`` (EMA when saved) into ``model_dir/<module>.safetensors``
    and update ``model_dir/config.json`` with this stage's settings (:func:`merge_stage_config`)."""
    import json

    from safetensors.torch import save_file

    from a2v.config import from_dict, save_json
    from a2v.io import atomic_path
    from a2v.train import load_checkpoint

    name = MODULE_NAMES[stage]
    out = Path(model_dir)
    cfg_file = out / "config.json"
    existing = None
    if cfg_file.is_file():
        existing = from_dict(FaceConfig, json.loads(cfg_file.read_text(encoding="utf-8")), str(cfg_file))
    merged = merge_stage_config(existing, cfg, stage)  # refuse before writing anything
    state = load_checkpoint(ckpt_dir, ema=True)[name]
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{name}.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    save_json(merged, cfg_file)
    return out / f"{name}.safetensors"
