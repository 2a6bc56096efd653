"""Exact resume after SIGKILL, and 2 CPU processes (gloo) against one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
from a2v_train_tiny import main as tiny_main
from a2v_train_tiny import mlp
from safetensors.torch import load_file

from a2v.train import load_checkpoint

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "a2v_train_tiny.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _wait_for(paths: list[Path], proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    t0 = time.monotonic()
    while not all(p.exists() for p in paths):
        if proc.poll() is not None:
            raise AssertionError(f"training process ended early (rc {proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            raise AssertionError(f"timed out waiting for {paths}")
        time.sleep(0.1)


def _assert_same_checkpoint(a: Path, b: Path) -> None:
    for ema in (False, True):
        wa, wb = load_checkpoint(a, ema=ema), load_checkpoint(b, ema=ema)
        assert wa.keys() == wb.keys()
        for name in wa:
            for k in wa[name]:
                assert torch.equal(wa[name][k], wb[name][k]), (name, k, ema)
    oa = torch.load(a / "optim_main.pt", weights_only=True)
    ob = torch.load(b / "optim_main.pt", weights_only=True)
    for i in oa["state"]:
        assert torch.equal(oa["state"][i]["exp_avg_sq"], ob["state"][i]["exp_avg_sq"])


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    # shuffled data, dropout and EMA: weights depend on the RNG and the data position
    args = ["--steps", "10", "--ckpt-every", "3", "--dropout", "0.3", "--ema", "0.8"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    tiny_main([str(ref), *args])
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(run), *args, "--block-at", "7"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for([run / "checkpoints" / "step_000006" / "state.json", run / "blocked"], proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((run / "checkpoints" / "step_000006" / "state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 1)  # 5 batches/epoch: resume lands mid-epoch
    assert not (run / "checkpoints" / "step_000009").exists()
    (run / "checkpoints" / ".tmp_step_000009").mkdir()  # as left by a crash while saving
    tiny_main([str(run), *args, "--resume"])
    _assert_same_checkpoint(ref / "checkpoints" / "step_000010", run / "checkpoints" / "step_000010")
    assert not (run / "checkpoints" / ".tmp_step_000009").exists()
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10]  # lines written after step 6 by the killed run were dropped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_match_one(tmp_path):
    args = ["--steps", "6", "--ckpt-every", "0", "--dump-ranks"]
    # torchrun, as `accelerate launch --multi_gpu` uses on GPUs (its --cpu multi-process mode needs mpirun);
    # Accelerator(cpu=True) then runs DDP over gloo
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(SCRIPT), str(tmp_path / "ddp"), *args]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = load_file(str(tmp_path / "ddp" / "rank0.safetensors")), load_file(str(tmp_path / "ddp" / "rank1.safetensors"))
    tiny_main([str(tmp_path / "one"), *args])
    one = load_file(str(tmp_path / "one" / "rank0.safetensors"))
    for k in one:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], one[k], rtol=0, atol=1e-6)
    assert not torch.equal(one["0.weight"], mlp().state_dict()["0.weight"])  # it did train
    state = json.loads((tmp_path / "ddp" / "checkpoints" / "step_000006" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng"]) == 2
