"""Tiny deterministic training for the a2v.train tests; also a script for subprocess runs.

    python a2v_train_tiny.py OUT --steps 10 --ckpt-every 5 [--resume] [--block-at 7] [--dropout 0.2] [--dump-ranks]

With ``--block-at N`` the run writes ``OUT/blocked`` at update N and waits forever (to be SIGKILLed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from a2v.train import Task, TrainConfig, fit


class ToyData(torch.utils.data.Dataset):
    """n items: x float32 (4,), y float32 (1,) = w.x + 0.1 noise; fixed by ``seed``."""

    def __init__(self, n: int = 40, seed: int = 123) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)  # (N,4)
        w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.y = self.x @ w + 0.1 * torch.randn(n, 1, generator=g)  # (N,4)->(N,1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def mlp(dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


class Regress(Task):
    def __init__(self, dropout: float = 0.0, sgd: bool = False, block_at: int = -1, marker: Path | None = None):
        self.net = mlp(dropout)
        self.sgd, self.block_at, self.marker = sgd, block_at, marker

    def modules(self):
        return {"net": self.net}

    def optimizers(self, modules, cfg):
        if self.sgd:
            return {"main": torch.optim.SGD(modules["net"].parameters(), lr=cfg.lr)}
        return super().optimizers(modules, cfg)

    def step(self, batch, ctx):
        if ctx.step == self.block_at and self.marker is not None:
            self.marker.write_text("blocked")
            while True:
                time.sleep(1)
        x, y = batch  # (B,4), (B,1)
        return {"loss": F.mse_loss(ctx.modules["net"](x), y)}

    def evaluate(self, data, ctx):
        x, y = data
        return {"mse": float(F.mse_loss(ctx.eval_modules["net"](x.to(ctx.device)), y.to(ctx.device)))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ckpt-every", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--ema", type=float, default=0.0)
    ap.add_argument("--block-at", type=int, default=-1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--dump-ranks", action="store_true", help="each rank saves its final weights to OUT/rank<r>.safetensors")
    a = ap.parse_args(argv)
    cfg = TrainConfig(max_steps=a.steps, batch_size=a.batch_size, lr=1e-2, ckpt_every=a.ckpt_every, keep_last=0,
                      log_every=2, ema_decay=a.ema, cpu=True, tensorboard=False, seed=3)
    task = Regress(a.dropout, block_at=a.block_at, marker=a.out / "blocked")
    fit(task, ToyData(), cfg, a.out, resume=a.resume, progress=False)
    if a.dump_ranks:
        from accelerate import PartialState
        from safetensors.torch import save_file

        save_file(task.net.state_dict(), str(a.out / f"rank{PartialState().process_index}.safetensors"))


if __name__ == "__main__":
    main()
