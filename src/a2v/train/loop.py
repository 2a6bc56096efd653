"""The one training loop of all recipes: :func:`fit` runs a :class:`~a2v.train.task.Task` on accelerate.

One GPU, many GPUs or many nodes: start the same script with ``accelerate launch``
(``--multi_gpu --num_processes N``; nodes: ``--num_machines``); several CPU processes
(DDP over gloo): ``torchrun --nproc_per_node N script.py`` with ``train.cpu=true``.
Per optimizer update the loop takes ``grad_accum_steps`` micro-batches (DDP gradient
sync only on the last), calls ``task.step`` on each (in autocast for bf16/fp16), and
when the task returned ``{"loss": ...}`` does the backward, clipping and optimizer and
scheduler steps itself. After each update: EMA, logging (``metrics.jsonl``, TensorBoard,
progress bar), evaluation, samples and checkpoints at their ``*_every`` steps.

``Task.modules()`` go through ``accelerator.prepare`` (DDP with several processes, which
needs trainable parameters in each); ``Task.state_modules()`` (momentum encoders, queues)
are only moved to the device and set to rank 0's values, then saved, restored and put in
eval mode for ``evaluate``/``sample`` like the others; the task keeps them equal across
ranks (momentum updates from the synchronised weights, ``ctx.gather`` before enqueueing).

Resume is exact: a checkpoint holds the weights, EMA, optimizer, scheduler and fp16
loss-scaler states, the RNG of python/numpy/torch on every rank and the data position
``(epoch, batch_in_epoch)``; the batch order is a pure function of ``(seed, epoch)``
(:class:`~a2v.train.sampler.EpochBatchSampler`) so the resumed run sees the same
batches. Randomness inside ``Dataset.__getitem__`` resumes exactly with ``num_workers=0``
(workers are re-seeded per epoch from ``(seed, epoch)``, not per batch).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from a2v.config import to_dict
from a2v.errors import ConfigError, InputError
from a2v.io import write_json_atomic
from a2v.train import checkpoint as ck
from a2v.train.config import TrainConfig
from a2v.train.ema import EMA
from a2v.train.sampler import EpochBatchSampler
from a2v.train.task import StepContext, Task
from a2v.train.tracking import RunLog


@dataclass
class TrainResult:
    """What :func:`fit` leaves behind (paths on the main process)."""

    step: int
    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    train_metrics: dict[str, float] = field(default_factory=dict)  # last logged window (rank mean)
    eval_metrics: dict[str, float] = field(default_factory=dict)  # last evaluation


def ema_too_slow(decay: float, warmup: bool, max_steps: int, max_initial_share: float = 0.1) -> str | None:
    """A warning when the EMA weights (which are exported) would still hold more than
    ``max_initial_share`` of the random initial weights after ``max_steps`` updates: decay**steps
    without warm-up; None when fine (or with warm-up, whose early decays are small)."""
    if decay <= 0 or warmup or max_steps <= 0:
        return None
    share = decay**max_steps
    if share <= max_initial_share:
        return None
    return (f"ema_decay {decay} averages over about {1 / (1 - decay):.0f} steps but training runs {max_steps}: "
            f"{share:.0%} of the exported EMA weights are still the random start; lower ema_decay, set "
            f"ema_warmup, or train longer")


def make_accelerator(cfg: TrainConfig) -> Any:
    """An ``accelerate.Accelerator`` for ``cfg`` (process group from ``accelerate launch`` if any)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    kw = {"cpu": cfg.cpu, "mixed_precision": cfg.mixed_precision, "step_scheduler_with_optimizer": False,
          "kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)]}
    try:
        return Accelerator(**kw)
    except ValueError as e:
        if "already been initialized" not in str(e):
            raise
    # AcceleratorState is a process-wide singleton that refuses a second fit() in one process
    # (tests, sweeps) with another precision: drop it (the process group is kept) and retry.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(**kw)


def _resolve_resume(resume: bool | str | Path, ckpt_root: Path, log: Any) -> Path | None:
    if resume is False:
        if ck.list_checkpoints(ckpt_root):
            raise ConfigError(f"{ckpt_root.parent} already holds checkpoints: pass --resume to continue "
                              "that run or choose another output folder")
        return None
    if resume is True:
        found = ck.list_checkpoints(ckpt_root)
        if not found:
            log(f"no checkpoint in {ckpt_root}: starting a new run")
        return found[-1] if found else None
    p = Path(resume)
    if not (p / "state.json").is_file():
        raise InputError(f"not a checkpoint folder (no state.json): {p}")
    return p


def _scalar(v: Any, device: torch.device) -> torch.Tensor:
    """A logged value as a 0-d float32 tensor on ``device`` (no host sync for tensors)."""
    if isinstance(v, torch.Tensor):
        return v.detach().float().mean().to(device)
    return torch.tensor(float(v), device=device)


def fit(task: Task, train_data: Any, cfg: TrainConfig, out_dir: str | Path, *, eval_data: Any = None,
        collate_fn: Any = None, resume: bool | str | Path = False, progress: bool = True,
        run_config: Any = None) -> TrainResult:
    """Train ``task`` on ``train_data`` (a map-style dataset: ``len`` + ``[i]``) for ``cfg.max_steps`` updates.

    ``eval_data`` is handed as is to ``task.evaluate``; ``resume``: False (new run; an
    output folder with checkpoints is refused), True (latest checkpoint in ``out_dir``, or
    a new run if none) or a checkpoint folder. ``run_config`` (the whole recipe config,
    a dataclass or dict; default ``cfg``) is saved as ``out_dir/config.json`` and in
    every checkpoint.
    """
    from accelerate.utils import broadcast_object_list, gather_object, send_to_device, set_seed

    out_dir = Path(out_dir)
    ckpt_root = out_dir / "checkpoints"
    acc = make_accelerator(cfg)
    main = acc.is_main_process

    def say(msg: str) -> None:
        if main:
            from a2v.cliutil import console

            console.print(msg)

    resume_dir = _resolve_resume(resume, ckpt_root, say)
    if resume_dir is None:
        set_seed(cfg.seed, device_specific=True)  # seed + rank
    modules = {ck.check_name(n): m for n, m in task.modules().items()}
    states = {ck.check_name(n): m for n, m in task.state_modules().items()}
    _check_modules(modules, states, acc.num_processes)
    optimizers = {ck.check_name(n): o for n, o in task.optimizers(modules, cfg).items()}
    schedulers = dict(task.schedulers(optimizers, cfg))
    if not optimizers:
        raise ValueError("Task.optimizers returned no optimizer")
    prepared = acc.prepare(*modules.values(), *optimizers.values())
    prepared = prepared if isinstance(prepared, tuple | list) else [prepared]
    wrapped = dict(zip(modules, prepared[:len(modules)], strict=True))
    opts = dict(zip(optimizers, prepared[len(modules):], strict=True))
    for m in states.values():
        m.to(acc.device)
        if acc.num_processes > 1:
            _broadcast_from_main(m)
    raw = {**{n: acc.unwrap_model(m) for n, m in wrapped.items()}, **states}
    ema_names = task.ema_modules if task.ema_modules is not None else tuple(modules)
    emas = {n: EMA(raw[n], cfg.ema_decay, cfg.ema_warmup) for n in ema_names} if cfg.ema_decay > 0 else {}
    if emas and (note := ema_too_slow(cfg.ema_decay, cfg.ema_warmup, cfg.max_steps)):
        say(f"[yellow]WARNING: {note}[/yellow]")

    sampler = EpochBatchSampler(len(train_data), cfg.batch_size, cfg.seed, cfg.shuffle, acc.process_index,
                                acc.num_processes, cfg.overfit_batches)
    step = epoch = batch_in_epoch = 0
    best: dict[str, Any] | None = None
    eval_metrics: dict[str, float] = {}
    saved_config = to_dict(run_config) if run_config is not None and not isinstance(run_config, dict) \
        else (run_config if run_config is not None else to_dict(cfg))

    if resume_dir is not None:
        state = ck.read_state(resume_dir)
        ck.load_modules(resume_dir, raw, device=acc.device)
        for n, e in emas.items():
            ck.load_modules(resume_dir, {n: e.module}, ema=True, device=acc.device)
            e.num_updates = state["ema_updates"][n]
        for n, o in opts.items():
            o.load_state_dict(ck.load_torch_state(resume_dir / f"optim_{n}.pt"))
        for n, s in schedulers.items():
            s.load_state_dict(ck.load_torch_state(resume_dir / f"sched_{n}.pt"))
        if acc.scaler is not None and state.get("scaler"):
            acc.scaler.load_state_dict(state["scaler"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        eval_metrics = state.get("eval_metrics", {})
        best = ck.read_best(ckpt_root)
        rngs = state["rng"]
        if len(rngs) == acc.num_processes:
            ck.set_rng_state(rngs[acc.process_index])
        else:
            say(f"resuming on {acc.num_processes} processes from {len(rngs)}: random streams are re-seeded")
            set_seed(cfg.seed + 7919 * step, device_specific=True)
        old = {k: v for k, v in state.get("config", {}).items()}
        changed = sorted(k for k in set(old) | set(saved_config) if old.get(k) != saved_config.get(k))
        say(f"resuming from {resume_dir} (step {step})" + (f"; config changed: {', '.join(changed)}" if changed else ""))
    if main:
        write_json_atomic(out_dir / "config.json", saved_config)
        if sampler.dropped_per_epoch:
            say(f"{sampler.dropped_per_epoch} of {len(train_data)} items are left out of each epoch "
                f"(not a multiple of batch_size={cfg.batch_size}; other ones each epoch when shuffled)")
        ck.prune(ckpt_root, 0, set())  # removes leftover .tmp_* of a crashed save
    log = RunLog(out_dir, main, cfg.max_steps, step, cfg.tensorboard, progress)
    ctx = StepContext(acc, cfg, wrapped, opts, schedulers, emas, states)
    window: dict[str, list[torch.Tensor]] = {}
    train_metrics: dict[str, float] = {}
    last_ckpt = ck.latest_checkpoint(out_dir)

    def save(step: int, new_best: bool) -> Path:
        rng = gather_object([ck.rng_state()])
        path = ckpt_root / ck.step_dir_name(step)
        if main:
            e, b = (epoch + 1, 0) if batch_in_epoch >= sampler.batches_per_epoch else (epoch, batch_in_epoch)
            state = {"step": step, "epoch": e, "batch_in_epoch": b, "world_size": acc.num_processes,
                     "eval_metrics": eval_metrics, "train_metrics": train_metrics, "rng": rng,
                     "ema_updates": {n: x.num_updates for n, x in emas.items()},
                     "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
                     "config": saved_config}
            ck.save_checkpoint(path, raw, emas, {n: o.state_dict() for n, o in opts.items()},
                               {n: s.state_dict() for n, s in schedulers.items()}, state)
            if new_best and best is not None:
                ck.write_best(ckpt_root, path, best["metric"], best["value"], best["mode"], step)
            ck.prune(ckpt_root, cfg.keep_last, {best["dir"]} if best else set())
        acc.wait_for_everyone()
        return path

    def callbacks(step: int) -> None:
        nonlocal eval_metrics, best, train_metrics, last_ckpt
        final = step >= cfg.max_steps
        ctx.step = step  # evaluate/sample see the number of updates done
        if step % cfg.log_every == 0 or final:
            keys = sorted(window)
            if keys:
                means = acc.reduce(torch.stack([torch.stack(window[k]).mean() for k in keys]), "mean")
                train_metrics = dict(zip(keys, means.tolist(), strict=True))
            for n, o in opts.items():
                train_metrics[f"lr/{n}"] = o.param_groups[0]["lr"]
            window.clear()
            bad = [k for k, v in train_metrics.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"non-finite {', '.join(bad)} at step {step}; last checkpoint: {last_ckpt}")
            log.log(step, train_metrics)
            shown = [f"{k} {train_metrics[k]:.4g}" for k in sorted(keys, key=lambda k: k != "loss")[:3] if not k.startswith("grad_norm")]
            log.advance(step, "  ".join(shown))
        else:
            log.advance(step)
        new_best = False
        if cfg.eval_every and eval_data is not None and (step % cfg.eval_every == 0 or final):
            result = [None]
            if main:
                result = [_run_eval(task, eval_data, ctx)]
            eval_metrics = broadcast_object_list(result)[0]
            log.log(step, {f"eval/{k}": v for k, v in eval_metrics.items()})
            if cfg.best_metric:
                if cfg.best_metric not in eval_metrics:
                    raise ConfigError(f"train.best_metric='{cfg.best_metric}' is not among the eval metrics "
                                      f"{sorted(eval_metrics)}")
                v = float(eval_metrics[cfg.best_metric])
                better = best is None or (v < best["value"] if cfg.best_mode == "min" else v > best["value"])
                if better:
                    best = {"metric": cfg.best_metric, "value": v, "mode": cfg.best_mode, "dir": ck.step_dir_name(step)}
                    new_best = True
        if cfg.sample_every and (step % cfg.sample_every == 0 or final) and main:
            d = out_dir / "samples" / ck.step_dir_name(step)
            d.mkdir(parents=True, exist_ok=True)
            _run_eval(task, d, ctx, sample=True)
        if final or new_best or (cfg.ckpt_every and step % cfg.ckpt_every == 0):
            last_ckpt = save(step, new_best)

    for n in wrapped:
        raw[n].train()
    micro = 0
    done = step >= cfg.max_steps
    try:
        while not done:
            sampler.set_epoch(epoch, batch_in_epoch)
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)  # worker seeds, not the global RNG
            loader = torch.utils.data.DataLoader(train_data, batch_sampler=sampler, num_workers=cfg.num_workers,
                                                 generator=g, pin_memory=acc.device.type == "cuda",
                                                 **({"collate_fn": collate_fn} if collate_fn is not None else {}))
            for batch in loader:
                batch = send_to_device(batch, acc.device)
                ctx.step, ctx.epoch, ctx.micro_step = step, epoch, micro
                ctx.sync_gradients = micro == cfg.grad_accum_steps - 1
                ctx.backward_called = False
                if micro == 0:
                    for o in opts.values():
                        o.zero_grad(set_to_none=True)
                with contextlib.ExitStack() as stack:
                    if not ctx.sync_gradients:
                        for m in wrapped.values():
                            stack.enter_context(acc.no_sync(m))
                    with acc.autocast():
                        out = task.step(batch, ctx)
                    if not ctx.backward_called:
                        if "loss" not in out or not isinstance(out["loss"], torch.Tensor):
                            raise ValueError("Task.step must return {'loss': tensor} or call ctx.backward itself")
                        ctx.backward(out["loss"])
                        for n in opts:
                            ctx.optimizer_step(n)
                for k, v in out.items():
                    window.setdefault(k, []).append(_scalar(v, acc.device))
                batch_in_epoch += 1
                micro = (micro + 1) % cfg.grad_accum_steps
                if not ctx.sync_gradients:
                    continue
                for n, norm in ctx.grad_norms.items():
                    window.setdefault(f"grad_norm/{n}", []).append(_scalar(norm, acc.device))
                ctx.grad_norms.clear()
                step += 1
                for n, e in emas.items():
                    e.update(raw[n])
                callbacks(step)
                if step >= cfg.max_steps:
                    done = True
                    break
            else:
                epoch += 1
                batch_in_epoch = 0
    finally:
        log.close()
    best_dir = ckpt_root / best["dir"] if best else None
    return TrainResult(step, out_dir, last_ckpt, best_dir, train_metrics, eval_metrics)


def _check_modules(modules: dict[str, Any], states: dict[str, Any], num_processes: int) -> None:
    """Names unique over ``modules``/``state_modules``; with DDP every trained module has something to train."""
    both = sorted(set(modules) & set(states))
    if both:
        raise ValueError(f"module name(s) {both} returned by both Task.modules() and Task.state_modules()")
    if num_processes > 1:
        idle = [n for n, m in modules.items() if not any(p.requires_grad for p in m.parameters())]
        if idle:
            raise ConfigError(f"module(s) {idle} have no trainable parameters, which DDP cannot wrap: "
                              "return them from Task.state_modules() instead of Task.modules()")


@torch.no_grad()
def _broadcast_from_main(module: torch.nn.Module) -> None:
    """Every parameter and buffer of ``module`` set to rank 0's values (what DDP does for wrapped modules)."""
    import torch.distributed as dist

    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)


def _run_eval(task: Task, data: Any, ctx: StepContext, sample: bool = False) -> Any:
    """``task.evaluate``/``task.sample`` in eval mode without grad; train mode restored after."""
    mods = list(ctx.eval_modules.values()) + [ctx.unwrap(n) for n in ctx.modules]
    modes = [m.training for m in mods]
    for m in mods:
        m.eval()
    try:
        with torch.no_grad(), ctx.accelerator.autocast():
            if sample:
                return task.sample(data, ctx)
            return {k: float(v) for k, v in task.evaluate(data, ctx).items()}
    finally:
        for m, t in zip(mods, modes, strict=True):
            m.train(t)
