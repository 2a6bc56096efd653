"""Parameters of a wrapped module used outside its DDP forward (a condition encoder run through ``ctx.unwrap``,
its output fed to the wrapped forward, as the tongue recipe's fusion does) still get their gradients
all-reduced: 2 CPU processes end with the same weights as 1 process.

Run by the test below, this file is also the worker script: ``python test_train_outside_forward_ddp.py OUT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent


class CondNet(nn.Module):
    """``encode(x)`` (the fusion, called outside the forward) then ``forward(cond)``; a learned null condition."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fusion = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)
        self.null_cond = nn.Parameter(torch.zeros(8))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(x)  # (B,4)->(B,8)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.head(cond)  # (B,8)->(B,1)


def main(out: Path) -> None:
    from a2v_train_tiny import ToyData
    from accelerate import PartialState
    from safetensors.torch import save_file

    from a2v.train import Task, TrainConfig, fit

    class OutsideForward(Task):
        def __init__(self) -> None:
            self.net = CondNet()

        def modules(self):
            return {"net": self.net}

        def step(self, batch, ctx):
            x, y = batch  # (B,4), (B,1)
            raw = ctx.unwrap("net")
            cond = raw.encode(x)  # (B,8), outside the DDP forward
            drop = torch.arange(x.shape[0], device=x.device) % 2 == 0  # (B,) every other row gets the null
            cond = torch.where(drop[:, None], raw.null_cond.expand_as(cond), cond)  # (B,8)
            return {"loss": F.mse_loss(ctx.modules["net"](cond), y)}

    cfg = TrainConfig(max_steps=4, batch_size=8, lr=1e-2, ckpt_every=0, log_every=1, cpu=True, tensorboard=False,
                      seed=3)
    task = OutsideForward()
    fit(task, ToyData(), cfg, out, progress=False)
    save_file(task.net.state_dict(), str(out / f"rank{PartialState().process_index}.safetensors"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_parameters_used_outside_the_ddp_forward_are_synchronised(tmp_path):
    from safetensors.torch import load_file

    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__, str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    main(tmp_path / "one")
    one = load_file(str(tmp_path / "one" / "rank0.safetensors"))
    r0, r1 = (load_file(str(tmp_path / "ddp" / f"rank{r}.safetensors")) for r in (0, 1))
    init = CondNet().state_dict()
    for k in one:
        assert torch.equal(r0[k], r1[k]), k  # identical on both ranks: the gradients were all-reduced
        torch.testing.assert_close(r0[k], one[k], rtol=0, atol=1e-6)  # and averaged like one process
        assert not torch.equal(one[k], init[k]), k  # every part trained, the fusion and the null included


if __name__ == "__main__":
    main(Path(sys.argv[1]))
