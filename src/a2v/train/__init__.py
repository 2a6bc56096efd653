"""Shared training engine: one small loop (:func:`fit`) under every recipe's explicit ``Task.step``.

    from a2v.train import Task, TrainConfig, fit

    class Regress(Task):
        def __init__(self): self.net = MLP()
        def modules(self): return {"net": self.net}
        def step(self, batch, ctx):
            x, y = batch                                   # (B,D), (B,1)
            return {"loss": F.mse_loss(ctx.modules["net"](x), y)}

    fit(Regress(), dataset, TrainConfig(max_steps=100), "runs/x", resume=True)

See :mod:`a2v.train.task` (the Task protocol, GAN example), :mod:`a2v.train.loop`
(what one update does, resume), :mod:`a2v.train.checkpoint` (the folder layout).
"""

from a2v.train.checkpoint import (
    best_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_modules,
    read_state,
)
from a2v.train.config import TrainConfig
from a2v.train.ema import EMA
from a2v.train.loop import TrainResult, fit, make_accelerator
from a2v.train.sampler import EpochBatchSampler
from a2v.train.task import StepContext, Task

__all__ = [
    "EMA", "EpochBatchSampler", "StepContext", "Task", "TrainConfig", "TrainResult", "best_checkpoint", "fit",
    "latest_checkpoint", "list_checkpoints", "load_checkpoint", "load_modules", "make_accelerator", "read_state",
]
