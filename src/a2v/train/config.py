"""Training settings shared by every recipe (a field ``train: TrainConfig`` in each recipe config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from a2v.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`a2v.train.fit`; YAML gives values, ``--set train.lr=1e-4`` overrides.

    Steps count optimizer updates. ``batch_size`` is the *global* micro-batch (summed over
    all processes; each of N processes loads ``batch_size / N`` items), so a run gives the
    same updates on 1 or many GPUs. One update sees ``batch_size * grad_accum_steps`` items.
    ``*_every`` of 0 switches that callback off.
    """

    max_steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0  # linear LR warm-up of the default scheduler
    grad_accum_steps: int = 1
    clip_grad_norm: float = 0.0  # max global L2 norm per optimizer; 0 = off
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    ema_decay: float = 0.0  # 0 = no EMA (see a2v.train.ema.EMA)
    ema_warmup: bool = False  # decay_t = min(ema_decay, (1 + t) / (10 + t))
    log_every: int = 50
    eval_every: int = 0
    sample_every: int = 0
    ckpt_every: int = 1000
    keep_last: int = 3  # step_* checkpoints kept (the best one is kept besides); 0 = keep all
    best_metric: str = ""  # eval metric that picks checkpoints/best.json; "" = off
    best_mode: Literal["min", "max"] = "min"
    seed: int = 0
    shuffle: bool = True
    overfit_batches: int = 0  # > 0: train on the first N batches only, over and over
    num_workers: int = 0
    find_unused_parameters: bool = False  # DDP option for modules not used in every step
    cpu: bool = False  # force CPU even when CUDA is present
    tensorboard: bool = True

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "grad_accum_steps", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        nonneg = ("warmup_steps", "eval_every", "sample_every", "ckpt_every", "keep_last", "overfit_batches",
                  "num_workers")
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr < 0 or self.weight_decay < 0 or self.clip_grad_norm < 0:
            raise ConfigError("train.lr, train.weight_decay and train.clip_grad_norm must be >= 0")
