"""Task.state_modules: saved, restored exactly on resume, on the device, outside the optimizer and the EMA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from a2v_train_tiny import ToyData, mlp
from torch import nn

from a2v.errors import ConfigError
from a2v.nn.moco import FeatureQueue, momentum_update_
from a2v.train import Task, TrainConfig, fit, load_checkpoint, read_state
from a2v.train.loop import _check_modules


class Tally(nn.Module):
    """Buffers only: items seen (int64) and the running sum of the targets (float32)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("target_sum", torch.zeros(()))


class WithState(Task):
    """Regression net (trained) + its momentum copy, a queue of its outputs and a tally (state)."""

    def __init__(self) -> None:
        self.net = mlp(dropout=0.2)
        self.key = mlp(seed=1).requires_grad_(False)
        self.queue = FeatureQueue(12, 1)
        self.tally = Tally()
        self.modes: list[bool] = []

    def modules(self):
        return {"net": self.net}

    def state_modules(self):
        return {"key": self.key, "queue": self.queue, "tally": self.tally}

    def step(self, batch, ctx):
        x, y = batch  # (B,4), (B,1)
        momentum_update_(ctx.modules["key"], ctx.unwrap("net"), 0.5)
        with torch.no_grad():
            k = ctx.modules["key"](x)  # (B,1)
        ctx.modules["queue"].enqueue(ctx.gather(k))
        t = ctx.modules["tally"]
        t.count += x.shape[0]
        t.target_sum += y.sum()
        return {"loss": F.mse_loss(ctx.modules["net"](x), y)}

    def evaluate(self, data, ctx):
        self.modes.append(ctx.eval_modules["key"].training)
        return {"queued": float(ctx.eval_modules["queue"].count)}


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=6, batch_size=4, lr=1e-2, ckpt_every=3, keep_last=0, log_every=1, cpu=True,
                tensorboard=False, seed=5, ema_decay=0.9)
    return TrainConfig(**{**base, **kw})


def test_state_modules_checkpoint_and_exact_resume(tmp_path):
    data = ToyData(40)
    ref = WithState()
    key0 = {k: v.clone() for k, v in ref.key.state_dict().items()}
    res = fit(ref, data, _cfg(eval_every=6), tmp_path / "ref", eval_data=data, progress=False)
    assert res.step == 6 and res.eval_metrics["queued"] == 12.0
    assert ref.modes == [False]  # evaluate sees the state modules in eval mode
    ck = load_checkpoint(res.last_checkpoint)
    assert set(ck) == {"net", "key", "queue", "tally"}
    assert int(ck["tally"]["count"]) == 6 * 4 and int(ck["queue"]["ptr"]) == (6 * 4) % 12
    assert torch.isclose(ck["tally"]["target_sum"], ref.tally.target_sum)
    assert not torch.equal(ck["key"]["0.weight"], key0["0.weight"])  # the momentum update moved it
    assert (tmp_path / "ref" / "checkpoints" / "step_000006" / "ema_net.safetensors").is_file()
    assert not list((tmp_path / "ref" / "checkpoints" / "step_000006").glob("ema_[kqt]*"))  # no EMA of state
    optim = torch.load(res.last_checkpoint / "optim_main.pt", weights_only=True)
    assert len(optim["param_groups"][0]["params"]) == len(list(ref.net.parameters()))

    # a run stopped at step 3, resumed in fresh objects (other initial state), ends the same
    fit(WithState(), data, _cfg(max_steps=3), tmp_path / "run", progress=False)
    fresh = WithState()
    nn.init.zeros_(fresh.key[0].weight)
    fresh.tally.count.fill_(99)
    res2 = fit(fresh, data, _cfg(), tmp_path / "run", resume=True, progress=False)
    assert read_state(res2.last_checkpoint)["step"] == 6
    ck2 = load_checkpoint(res2.last_checkpoint)
    for name in ck:
        for k in ck[name]:
            assert torch.equal(ck[name][k], ck2[name][k]), (name, k)
    assert int(fresh.tally.count) == 24 and torch.equal(fresh.queue.keys, ref.queue.keys)


def test_gather_on_one_process_is_the_input_detached(tmp_path):
    seen = {}

    class G(Task):
        def __init__(self):
            self.net = mlp()

        def modules(self):
            return {"net": self.net}

        def step(self, batch, ctx):
            out = ctx.modules["net"](batch[0])  # (B,1)
            seen["g"] = ctx.gather(out)
            seen["out"] = out
            return {"loss": out.pow(2).mean()}

    fit(G(), ToyData(8), _cfg(max_steps=1, ckpt_every=0, ema_decay=0.0), tmp_path, progress=False)
    assert torch.equal(seen["g"], seen["out"].detach()) and not seen["g"].requires_grad


def test_module_names_and_ddp_check():
    net, queue = nn.Linear(2, 2), FeatureQueue(4, 2)
    with pytest.raises(ValueError, match="both"):
        _check_modules({"a": net}, {"a": queue}, 1)
    _check_modules({"a": net, "q": queue}, {}, 1)  # one process: nothing is wrapped, allowed
    with pytest.raises(ConfigError, match="state_modules"):
        _check_modules({"a": net, "q": queue}, {}, 2)
    _check_modules({"a": net}, {"q": queue}, 2)
