"""fit(): overfitting, grad accumulation, two-optimizer (GAN) steps, EMA, logging, configs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from a2v_train_tiny import Regress, ToyData, mlp
from torch import nn

from a2v.config import load_config
from a2v.errors import ConfigError, InputError
from a2v.train import EpochBatchSampler, Task, TrainConfig, fit, load_checkpoint


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=3, batch_size=8, lr=1e-2, log_every=1, ckpt_every=0, cpu=True, tensorboard=False, seed=1)
    return TrainConfig(**(base | kw))


def test_tiny_mlp_overfits_one_batch(tmp_path):
    data = ToyData()
    cfg = _cfg(max_steps=300, overfit_batches=1, lr=2e-2, log_every=50)
    res = fit(Regress(), data, cfg, tmp_path, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] > 1.0
    assert res.train_metrics["loss"] < 1e-2
    idx = EpochBatchSampler(len(data), 8, seed=1).global_batches(0)[0]  # the one batch trained on
    net = mlp()
    net.load_state_dict(load_checkpoint(res.last_checkpoint)["net"])
    assert F.mse_loss(net(data.x[idx]), data.y[idx]).item() < 1e-2


def test_grad_accumulation_equals_big_batch_and_hand_sgd(tmp_path):
    data = ToyData()
    big = fit(Regress(sgd=True), data, _cfg(batch_size=8), tmp_path / "big", progress=False)
    acc = fit(Regress(sgd=True), data, _cfg(batch_size=4, grad_accum_steps=2), tmp_path / "acc", progress=False)
    w_big, w_acc = load_checkpoint(big.last_checkpoint)["net"], load_checkpoint(acc.last_checkpoint)["net"]
    net = mlp()  # plain SGD by hand over the same batches
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    for idx in EpochBatchSampler(len(data), 8, seed=1).global_batches(0)[:3]:
        opt.zero_grad()
        F.mse_loss(net(data.x[idx]), data.y[idx]).backward()
        opt.step()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(w_big[k], v, rtol=0, atol=1e-6)
        torch.testing.assert_close(w_acc[k], v, rtol=0, atol=1e-6)
    assert not torch.equal(w_big["0.weight"], mlp().state_dict()["0.weight"])  # it did train


class ToyGAN(Task):
    """G: (B,2) noise -> (B,4); D: (B,4) -> (B,1) logit; non-saturating GAN loss, SGD on both."""

    ema_modules = ("g",)

    def __init__(self):
        torch.manual_seed(0)
        self.g, self.d = nn.Linear(2, 4), nn.Linear(4, 1)

    def modules(self):
        return {"g": self.g, "d": self.d}

    def optimizers(self, modules, cfg):
        return {"g": torch.optim.SGD(modules["g"].parameters(), lr=0.1),
                "d": torch.optim.SGD(modules["d"].parameters(), lr=0.05)}

    @staticmethod
    def losses(G, D, real, z, which):
        if which == "d":
            fake = G(z).detach()
            return F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        return F.softplus(-D(G(z))).mean()

    def step(self, batch, ctx):
        real = batch[0]  # (B,4)
        z = real[:, :2] * 0.5  # (B,4)->(B,2) deterministic "noise"
        G, D = ctx.modules["g"], ctx.modules["d"]
        d_loss = self.losses(G, D, real, z, "d")
        ctx.backward(d_loss)
        ctx.optimizer_step("d")
        with ctx.frozen("d"):
            g_loss = self.losses(G, ctx.unwrap("d"), real, z, "g")
        ctx.backward(g_loss)
        ctx.optimizer_step("g")
        return {"d_loss": d_loss, "g_loss": g_loss}


def test_gan_two_optimizers_match_hand_written_steps(tmp_path):
    data = ToyData()
    res = fit(ToyGAN(), data, _cfg(max_steps=2, ema_decay=0.5), tmp_path, progress=False)
    ref = ToyGAN()
    og, od = torch.optim.SGD(ref.g.parameters(), lr=0.1), torch.optim.SGD(ref.d.parameters(), lr=0.05)
    for idx in EpochBatchSampler(len(data), 8, seed=1).global_batches(0)[:2]:
        real = data.x[idx]
        z = real[:, :2] * 0.5
        od.zero_grad()
        ToyGAN.losses(ref.g, ref.d, real, z, "d").backward()
        od.step()
        og.zero_grad()
        ref.d.requires_grad_(False)
        ToyGAN.losses(ref.g, ref.d, real, z, "g").backward()
        ref.d.requires_grad_(True)
        og.step()
    got = load_checkpoint(res.last_checkpoint)
    for k, v in ref.g.state_dict().items():
        torch.testing.assert_close(got["g"][k], v, rtol=0, atol=1e-6)
    for k, v in ref.d.state_dict().items():
        torch.testing.assert_close(got["d"][k], v, rtol=0, atol=1e-6)
    names = {p.name for p in res.last_checkpoint.iterdir()}
    assert {"g.safetensors", "d.safetensors", "ema_g.safetensors", "optim_g.pt", "optim_d.pt"} <= names
    assert "ema_d.safetensors" not in names
    assert {"d_loss", "g_loss"} <= set(res.train_metrics)


def test_eval_sample_tensorboard_and_progress(tmp_path):
    class WithSample(Regress):
        def sample(self, out_dir, ctx):
            assert not torch.is_grad_enabled() and not ctx.eval_modules["net"].training
            (out_dir / "pred.txt").write_text(str(ctx.step))

    data = ToyData()
    cfg = _cfg(max_steps=4, eval_every=2, sample_every=2, tensorboard=True, ema_decay=0.9, warmup_steps=4)
    res = fit(WithSample(), data, cfg, tmp_path, eval_data=(data.x, data.y), progress=True)
    assert (tmp_path / "samples" / "step_000004" / "pred.txt").read_text() == "4"
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/mse" in r] == [2, 4]
    lrs = [r["lr/main"] for r in rows if "lr/main" in r]  # logged after the k-th update: lr * min(1, (k + 1) / 4)
    assert lrs == pytest.approx([5e-3, 7.5e-3, 1e-2, 1e-2])
    assert res.eval_metrics["mse"] == rows[-1]["eval/mse"]


def test_bf16_runs_on_cpu(tmp_path):
    res = fit(Regress(), ToyData(), _cfg(max_steps=2, mixed_precision="bf16"), tmp_path, progress=False)
    assert torch.isfinite(torch.tensor(res.train_metrics["loss"]))


def test_config_yaml_set_and_errors(tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text("max_steps: 7\nlr: 1e-3\nmixed_precision: bf16\n")
    cfg = load_config(TrainConfig, y, ["batch_size=16", "adam_betas=[0.5,0.9]"])
    assert (cfg.max_steps, cfg.lr, cfg.batch_size, cfg.adam_betas) == (7, 1e-3, 16, (0.5, 0.9))
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config(TrainConfig, None, ["mixed_precision=fp8"])
    with pytest.raises(ConfigError, match="grad_accum_steps"):
        TrainConfig(grad_accum_steps=0)
    with pytest.raises(InputError, match="fewer than one batch"):
        fit(Regress(), ToyData(n=4), _cfg(), tmp_path / "small", progress=False)
    fit(Regress(), ToyData(), _cfg(max_steps=1), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        fit(Regress(), ToyData(), _cfg(max_steps=1), tmp_path / "run", progress=False)


def test_grad_clipping_matches_hand_clip(tmp_path):
    data = ToyData()
    res = fit(Regress(sgd=True), data, _cfg(max_steps=1, clip_grad_norm=0.1), tmp_path, progress=False)
    net = mlp()
    idx = EpochBatchSampler(len(data), 8, seed=1).global_batches(0)[0]
    F.mse_loss(net(data.x[idx]), data.y[idx]).backward()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1)
    assert norm > 0.1  # the clip is active
    torch.optim.SGD(net.parameters(), lr=1e-2).step()
    assert res.train_metrics["grad_norm/main"] == pytest.approx(norm.item(), rel=1e-5)
    got = load_checkpoint(res.last_checkpoint)["net"]
    for k, v in net.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=1e-6)


def test_ema_slower_than_the_run_is_warned_about(tmp_path, monkeypatch):
    from a2v.cliutil import console
    from a2v.train.loop import ema_too_slow

    note = ema_too_slow(0.9999, False, 3000)
    assert note is not None and "74%" in note  # 0.9999**3000 = 0.741 of the random start left
    assert ema_too_slow(0.995, False, 3000) is None  # 0.995**3000 ~ 3e-7
    assert ema_too_slow(0.9999, True, 3000) is None  # warm-up: early decays (1+t)/(10+t) are small
    assert ema_too_slow(0.0, False, 10) is None
    said = []
    monkeypatch.setattr(console, "print", lambda msg, *a, **k: said.append(str(msg)))
    fit(Regress(), ToyData(), _cfg(max_steps=3, ema_decay=0.9), tmp_path / "a", progress=False)
    assert any("ema_decay 0.9 averages over about 10 steps but training runs 3" in s for s in said), said
    said.clear()
    fit(Regress(), ToyData(), _cfg(max_steps=3, ema_decay=0.9, ema_warmup=True), tmp_path / "b", progress=False)
    assert not any("ema_decay" in s for s in said)
