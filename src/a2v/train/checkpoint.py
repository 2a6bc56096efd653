"""Checkpoints: safetensors weights + JSON state, written atomically, last K kept, best tracked.

Layout of a run folder::

    out_dir/config.json                       resolved run config
    out_dir/checkpoints/step_000100/
        <module>.safetensors                  weights and buffers of each Task module and state module
        ema_<module>.safetensors              EMA weights (when train.ema_decay > 0)
        optim_<name>.pt, sched_<name>.pt      torch.save of state dicts (load: weights_only=True)
        state.json                            step, epoch, batch_in_epoch, metrics, RNG per rank, config
    out_dir/checkpoints/best.json             {"dir": "step_000100", "metric": ..., "value": ..., "mode": ...}

A checkpoint is written into ``checkpoints/.tmp_step_XXXXXX`` and renamed when
complete, so a crash never leaves a partial ``step_*`` folder; leftovers of
``.tmp_*`` are ignored and removed on the next run.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from a2v.errors import InputError
from a2v.io import write_json_atomic

_STEP_RE = re.compile(r"^step_(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"module/optimizer name '{name}' must use only letters, digits, '_' and '-'")
    return name


def list_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete ``step_*`` checkpoints under ``ckpt_root``, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_RE.match(p.name)) and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(Path(run_dir) / "checkpoints")
    return ckpts[-1] if ckpts else None


def best_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint named by ``checkpoints/best.json``, or None."""
    info = read_best(Path(run_dir) / "checkpoints")
    return Path(run_dir) / "checkpoints" / info["dir"] if info else None


def read_best(ckpt_root: Path) -> dict[str, Any] | None:
    p = ckpt_root / "best.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def write_best(ckpt_root: Path, ckpt_dir: Path, metric: str, value: float, mode: str, step: int) -> None:
    write_json_atomic(ckpt_root / "best.json",
                      {"dir": ckpt_dir.name, "metric": metric, "value": value, "mode": mode, "step": step})


def save_checkpoint(ckpt_dir: Path, modules: dict[str, nn.Module], emas: dict[str, nn.Module],
                    optimizers: dict[str, dict], schedulers: dict[str, dict], state: dict[str, Any]) -> Path:
    """Write one checkpoint folder atomically (temp folder, then rename); returns ``ckpt_dir``.

    ``modules``/``emas``: name -> module (``emas`` values have ``.module``);
    ``optimizers``/``schedulers``: name -> state dict; ``state``: JSON-serialisable.
    """
    from safetensors.torch import save_model

    ckpt_dir = Path(ckpt_dir)
    tmp = ckpt_dir.parent / f".tmp_{ckpt_dir.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for name, m in modules.items():
            save_model(m, str(tmp / f"{check_name(name)}.safetensors"), force_contiguous=True)
        for name, e in emas.items():
            save_model(e.module, str(tmp / f"ema_{check_name(name)}.safetensors"), force_contiguous=True)
        for name, sd in optimizers.items():
            torch.save(sd, tmp / f"optim_{check_name(name)}.pt")
        for name, sd in schedulers.items():
            torch.save(sd, tmp / f"sched_{check_name(name)}.pt")
        _write_state(tmp / "state.json", state)
        old = ckpt_dir.parent / f".old_{ckpt_dir.name}"
        if ckpt_dir.exists():  # re-saving the same step (e.g. after a resume): swap, then drop
            os.replace(ckpt_dir, old)
        os.replace(tmp, ckpt_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ckpt_dir


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_state(ckpt_dir: str | Path) -> dict[str, Any]:
    p = Path(ckpt_dir) / "state.json"
    if not p.is_file():
        raise InputError(f"not a checkpoint (no state.json): {ckpt_dir}")
    return json.loads(p.read_text(encoding="utf-8"))


def load_checkpoint(ckpt_dir: str | Path, ema: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Module name -> state dict (CPU tensors) of a checkpoint; ``ema=True`` takes EMA weights where saved.

    Tied weights are stored once; load those with :func:`load_modules` instead.
    """
    from safetensors.torch import load_file

    d = Path(ckpt_dir)
    read_state(d)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for f in sorted(d.glob("*.safetensors")):
        if f.name.startswith("ema_"):
            continue
        name = f.stem
        src = d / f"ema_{name}.safetensors" if ema and (d / f"ema_{name}.safetensors").is_file() else f
        out[name] = load_file(str(src))
    return out


def load_modules(ckpt_dir: str | Path, modules: dict[str, nn.Module], ema: bool = False,
                 device: str | torch.device = "cpu") -> None:
    """Load weights into ``modules`` in place (strict); ``ema=True`` prefers ``ema_<name>.safetensors``."""
    from safetensors.torch import load_model

    d = Path(ckpt_dir)
    for name, m in modules.items():
        f = d / f"ema_{name}.safetensors" if ema and (d / f"ema_{name}.safetensors").is_file() else d / f"{name}.safetensors"
        if not f.is_file():
            raise InputError(f"checkpoint {d} has no weights for module '{name}' ({f.name})")
        load_model(m, str(f), strict=True, device=str(device))


def load_torch_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def prune(ckpt_root: Path, keep_last: int, protect: set[str]) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints (never those named in ``protect``)."""
    removed: list[Path] = []
    for p in ckpt_root.glob(".tmp_step_*"):
        shutil.rmtree(p, ignore_errors=True)
    if keep_last <= 0:
        return removed
    ckpts = list_checkpoints(ckpt_root)
    for p in ckpts[:-keep_last]:
        if p.name not in protect:
            shutil.rmtree(p)
            removed.append(p)
    return removed


# --- RNG state as JSON -----------------------------------------------------------------------

def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state() -> dict[str, Any]:
    """python/numpy/torch (and current CUDA device) RNG states, JSON-serialisable."""
    v, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    out = {"python": [v, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
           "torch": _b64(torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = _b64(torch.cuda.get_rng_state())
    return out


def set_rng_state(s: dict[str, Any]) -> None:
    v, mt, gauss = s["python"]
    random.setstate((v, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(s["torch"]))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state(_unb64(s["cuda"]))
