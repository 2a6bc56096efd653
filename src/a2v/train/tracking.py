"""Run logging on the main process: ``metrics.jsonl``, TensorBoard (``out_dir/tb``), rich progress bar with ETA."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from a2v.io import write_text_atomic


class RunLog:
    """Scalars to ``metrics.jsonl`` (one JSON object per line) and TensorBoard; a progress bar.

    Inactive (all calls no-ops) on non-main processes. On resume at ``start_step`` the
    lines of later steps (written after that checkpoint by the interrupted run) are dropped.
    """

    def __init__(self, out_dir: Path, active: bool, total_steps: int, start_step: int = 0,
                 tensorboard: bool = True, progress: bool = True) -> None:
        self.active = active
        self.path = out_dir / "metrics.jsonl"
        self.writer = None
        self.bar = None
        self.t0 = time.monotonic()
        if not active:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            kept = [ln for ln in self.path.read_text(encoding="utf-8").splitlines()
                    if ln.strip() and json.loads(ln).get("step", 0) <= start_step]
            write_text_atomic(self.path, "".join(ln + "\n" for ln in kept))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_step + 1 if start_step else None)
        if progress:
            from a2v.cliutil import progress_bar

            self.bar = progress_bar("train", "{task.fields[info]}")
            self.task = self.bar.add_task("train", total=total_steps, completed=start_step, info="")
            self.bar.start()

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.active or not scalars:
            return
        row: dict[str, Any] = {"step": step, "time_s": round(time.monotonic() - self.t0, 3)}
        row.update({k: (v if math.isfinite(v) else str(v)) for k, v in scalars.items()})
        with self.path.open("a", encoding="utf-8") as f:  # an append-only log, one line per call
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)

    def advance(self, step: int, info: str | None = None) -> None:
        if self.bar is not None:
            kw = {"info": info} if info is not None else {}
            self.bar.update(self.task, completed=step, **kw)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
