"""Checkpoint files, atomic writes, keep-last-K and best pointers."""

from __future__ import annotations

import json

import pytest
import torch
from a2v_train_tiny import Regress, ToyData
from safetensors.torch import load_file

from a2v.train import TrainConfig, best_checkpoint, fit, list_checkpoints, load_checkpoint, read_state
from a2v.train import checkpoint as ck


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=10, batch_size=8, lr=1e-2, log_every=1, cpu=True, tensorboard=False, seed=2)
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_keep_last_and_best(tmp_path, mode):
    data = ToyData()
    cfg = _cfg(ckpt_every=2, eval_every=2, keep_last=2, best_metric="mse", best_mode=mode, ema_decay=0.5)
    res = fit(Regress(dropout=0.1), data, cfg, tmp_path, eval_data=(data.x, data.y), progress=False)
    evals = {r["step"]: r["eval/mse"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
             if "eval/mse" in r}
    assert sorted(evals) == [2, 4, 6, 8, 10]
    pick = min if mode == "min" else max
    best_step = pick(evals, key=evals.get)
    best = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert (best["step"], best["value"], best["mode"]) == (best_step, evals[best_step], mode)
    assert best_checkpoint(tmp_path) == res.best_checkpoint == tmp_path / "checkpoints" / ck.step_dir_name(best_step)
    kept = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert kept == sorted({"step_000008", "step_000010", ck.step_dir_name(best_step)})
    if mode == "max":  # the worst eval is an early one here: kept besides the last two
        assert best_step < 8 and len(kept) == 3


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    res = fit(Regress(), ToyData(), _cfg(max_steps=3, ema_decay=0.5, warmup_steps=2), tmp_path, progress=False)
    d = res.last_checkpoint
    assert sorted(p.name for p in d.iterdir()) == ["ema_net.safetensors", "net.safetensors", "optim_main.pt",
                                                   "sched_main.pt", "state.json"]
    w = load_file(str(d / "net.safetensors"))
    assert torch.equal(w["0.weight"], load_checkpoint(d)["net"]["0.weight"])
    assert not torch.equal(load_checkpoint(d, ema=True)["net"]["0.weight"], w["0.weight"])
    torch.load(d / "optim_main.pt", weights_only=True)
    state = read_state(d)
    assert (state["step"], state["world_size"], state["ema_updates"]) == (3, 1, {"net": 3})
    assert state["config"]["max_steps"] == 3 and len(state["rng"]) == 1
    assert json.loads((tmp_path / "config.json").read_text())["max_steps"] == 3


def test_interrupted_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    net = Regress().net
    target = tmp_path / "checkpoints" / "step_000004"

    def boom(path, state):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "_write_state", boom)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(target, {"net": net}, {}, {}, {}, {"step": 4})
    assert list((tmp_path / "checkpoints").iterdir()) == []
    monkeypatch.undo()
    # a crash (SIGKILL) mid-write leaves only a .tmp_ folder: never listed, removed by the next run
    ck.save_checkpoint(target, {"net": net}, {}, {}, {}, {"step": 4})
    partial = tmp_path / "checkpoints" / ".tmp_step_000009"
    partial.mkdir()
    (partial / "net.safetensors").write_bytes(b"\0" * 10)
    assert list_checkpoints(tmp_path / "checkpoints") == [target]
    (tmp_path / "checkpoints" / "step_000006").mkdir()  # no state.json: not a checkpoint either
    assert list_checkpoints(tmp_path / "checkpoints") == [target]


def test_rng_state_roundtrip():
    import random

    import numpy as np

    s = json.loads(json.dumps(ck.rng_state()))
    a = (random.random(), np.random.rand(), torch.rand(2))
    ck.set_rng_state(s)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
