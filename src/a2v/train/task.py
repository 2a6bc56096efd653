"""What a recipe stage provides to the shared loop (:class:`Task`) and what it gets back (:class:`StepContext`).

Single optimizer (regression, VAE, diffusion): ``step`` returns ``{"loss": loss, ...}``
and the loop does backward, clipping, the optimizer and scheduler steps::

    def step(self, batch, ctx):
        x, y = batch
        loss = F.mse_loss(ctx.modules["net"](x), y)
        return {"loss": loss}

Several optimizers (GAN: D step then G step per batch): ``step`` calls
``ctx.backward`` / ``ctx.optimizer_step`` itself and returns scalars to log::

    def step(self, batch, ctx):
        G, D = ctx.modules["g"], ctx.modules["d"]
        fake = G(batch["z"])
        d_loss = hinge_d(D(batch["real"]), D(fake.detach()))
        ctx.backward(d_loss); ctx.optimizer_step("d")
        with ctx.frozen("d"):  # no D gradients from the G loss; plain D: no DDP sync needed
            g_loss = hinge_g(ctx.unwrap("d")(fake))
        ctx.backward(g_loss); ctx.optimizer_step("g")
        return {"d_loss": d_loss, "g_loss": g_loss}

State modules (momentum encoders, MoCo queues, running statistics kept by hand): networks
or buffers that belong to the run's state but are not trained by an optimizer go in
``state_modules()``. The loop saves and restores them like ``modules()`` (same
``<name>.safetensors`` files), moves them to the device and gives every rank rank 0's values
at the start (as DDP does for the trained ones), but never DDP-wraps them (DDP refuses a
module with nothing to train) nor hands them to an optimizer or the EMA. The task updates
them itself, the same way on every rank: from the synchronised trained weights (a momentum
update after an optimizer step) and from tensors of all ranks (``ctx.gather``)::

    def state_modules(self):
        return {"key_encoder": self.key_encoder, "queue": self.queue}

    def step(self, batch, ctx):
        momentum_update_(ctx.modules["key_encoder"], ctx.unwrap("encoder"), 0.99)
        q = ctx.modules["encoder"](batch)                   # (B,D)
        with torch.no_grad():
            k = ctx.modules["key_encoder"](batch)           # (B,D)
        loss = info_nce_with_queue(q, k, ctx.modules["queue"].valid(), 0.07)
        ctx.modules["queue"].enqueue(ctx.gather(k))         # (N*B,D): every rank's keys, rank order
        return {"loss": loss}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a2v.train.config import TrainConfig


class Task:
    """One training stage of a recipe. Subclass it; override ``modules`` and ``step`` at least.

    ``modules()`` names every network trained by an optimizer (DDP-wrapped with several
    processes; each must have parameters with ``requires_grad``); ``state_modules()`` the
    modules that are only state (saved, restored, on the device, but not wrapped, not
    optimised, no EMA; default none). Names are file names (letters, digits, ``_`` and ``-``)
    and unique over both. The defaults give one AdamW ("main") over all trainable parameters of
    ``modules()`` with ``cfg.lr``/``cfg.weight_decay``, a linear warm-up of
    ``cfg.warmup_steps``, no evaluation and no samples.
    """

    #: modules that get an EMA copy when ``cfg.ema_decay > 0``; None = all of them
    ema_modules: tuple[str, ...] | None = None

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def state_modules(self) -> dict[str, nn.Module]:
        """Modules that are run state but not trained (momentum encoders, queues): see the module docstring."""
        return {}

    def optimizers(self, modules: dict[str, nn.Module], cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        return {"main": torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)}

    def schedulers(self, optimizers: dict[str, torch.optim.Optimizer], cfg: TrainConfig) -> dict[str, Any]:
        """LR schedulers by optimizer name, stepped once per optimizer update."""
        if cfg.warmup_steps <= 0:
            return {}
        w = cfg.warmup_steps
        return {n: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (s + 1) / w)) for n, o in optimizers.items()}

    def step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One micro-batch: return ``{"loss": ...}`` or call ``ctx.backward``/``ctx.optimizer_step`` yourself.

        Every rank must return the same keys (they are averaged over ranks when logged).
        """
        raise NotImplementedError

    def evaluate(self, data: Any, ctx: StepContext) -> dict[str, float]:
        """Metrics on ``eval_data`` with ``ctx.eval_modules`` (EMA weights when on); main process only, no grad."""
        return {}

    def sample(self, out_dir: Path, ctx: StepContext) -> None:
        """Write pictures/videos for inspection into ``out_dir`` (main process only, no grad)."""


@contextlib.contextmanager
def frozen_parameters(*modules: Any) -> Iterator[None]:
    """``requires_grad`` off for every parameter of ``modules`` inside the block (gradients still flow
    through them to their inputs, e.g. a discriminator during the generator step); restored after."""
    saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


class StepContext:
    """Handed to ``Task.step``/``evaluate``/``sample`` by :func:`a2v.train.fit`.

    ``modules`` are the prepared (DDP-wrapped when distributed, autocast in mixed
    precision) modules to call in ``step``, and the plain state modules (names in
    ``state_names``); ``eval_modules`` the plain or EMA ones.
    ``step`` is the number of optimizer updates done before this micro-batch, ``micro_step``
    its index in the accumulation window, ``sync_gradients`` True on the last one.
    """

    def __init__(self, accelerator: Any, cfg: TrainConfig, modules: dict[str, nn.Module],
                 optimizers: dict[str, Any], schedulers: dict[str, Any], emas: dict[str, nn.Module],
                 state_modules: dict[str, nn.Module] | None = None) -> None:
        self.accelerator, self.cfg = accelerator, cfg
        self.state_names = tuple(state_modules or {})
        self.modules = {**modules, **(state_modules or {})}
        self.optimizers, self.schedulers, self.emas = optimizers, schedulers, emas
        self.step = self.epoch = self.micro_step = 0
        self.sync_gradients = True
        self.grad_norms: dict[str, float] = {}
        self.backward_called = False

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    def unwrap(self, name: str) -> nn.Module:
        return self.accelerator.unwrap_model(self.modules[name])

    @property
    def eval_modules(self) -> dict[str, nn.Module]:
        """EMA copies where they exist, else the unwrapped training modules."""
        return {n: (self.emas[n].module if n in self.emas else self.unwrap(n)) for n in self.modules}

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's ``x`` (B,...) -> (N*B,...): every rank's, concatenated in rank order, no gradient.

        MoCo's ``concat_all_gather`` (He et al. 2020, Alg. 1 / official code), so queues filled
        with it stay identical on all N ranks; ``x`` (detached) on one process. Every rank must
        call it with the same shape.
        """
        x = x.detach()
        if self.num_processes == 1:
            return x
        return self.accelerator.gather(x.contiguous())  # (B,...)->(N*B,...)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of a micro-batch loss, scaled by 1/grad_accum_steps (and by the fp16 loss scale)."""
        self.backward_called = True
        self.accelerator.backward(loss / self.cfg.grad_accum_steps)

    def optimizer_step(self, name: str) -> None:
        """Clip, step optimizer ``name`` and its scheduler, zero its grads; a no-op until ``sync_gradients``."""
        if name not in self.optimizers:
            raise KeyError(f"no optimizer '{name}' (have {sorted(self.optimizers)})")
        if not self.sync_gradients:
            return
        opt = self.optimizers[name]
        if self.cfg.clip_grad_norm > 0:
            self.accelerator.unscale_gradients(optimizer=opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad_norm)
            self.grad_norms[name] = norm
        opt.step()
        if name in self.schedulers and not getattr(opt, "step_was_skipped", False):
            self.schedulers[name].step()
        opt.zero_grad(set_to_none=True)

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[None]:
        """Switch off ``requires_grad`` of the named modules (gradients still flow through them).

        With several processes call the unwrapped module (``ctx.unwrap(name)``) inside,
        or set ``train.find_unused_parameters``: DDP expects gradients for every parameter.
        """
        with frozen_parameters(*(self.unwrap(n) for n in names)):
            yield
