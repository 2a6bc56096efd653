"""The face recipe's paper settings (Table 1): optimiser and schedule, 512 px super-resolution attention."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a2v.config import load_config, replace
from a2v.errors import ConfigError
from a2v.recipes.face.config import FaceConfig, SuperResConfig
from a2v.recipes.face.lamb import Lamb

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def paper_cfg() -> FaceConfig:
    return load_config(FaceConfig, REPO / "configs" / "face" / "paper.yaml")


def test_paper_yaml_equals_the_dataclass_defaults(paper_cfg):
    assert paper_cfg == FaceConfig()


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("stage,peak,batch", [("decoder", 2e-4, 64), ("sr", 5e-5, 128)])
def test_decoder_and_sr_use_lamb_with_warmup_from_a_tenth_over_20_epochs(paper_cfg, stage, peak, batch):
    from a2v.recipes.face.train import make_task, stage_train_config

    tcfg = stage_train_config(paper_cfg, stage)
    assert tcfg.lr == peak and tcfg.batch_size == batch
    with torch.device("meta"):  # paper-size networks, no memory
        task = make_task(paper_cfg, stage)
    task.steps_per_epoch = 7
    opt = task.optimizers(task.modules(), tcfg)["main"]
    assert isinstance(opt, Lamb)
    sched = task.schedulers({"main": opt}, tcfg)["main"]
    lrs = []
    for _ in range(7 * 20 + 50):  # 20 epochs of 7 updates, then 50 more
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] == pytest.approx(0.1 * peak)
    assert lrs[70] == pytest.approx(peak * (0.1 + 0.9 * 0.5))  # halfway through the warm-up
    assert lrs[140] == pytest.approx(peak) and lrs[-1] == pytest.approx(peak)
    assert all(b >= a for a, b in zip(lrs, lrs[1:], strict=False))


def test_warmup_in_epochs_needs_the_epoch_length(paper_cfg):
    from a2v.recipes.face.train import make_task, steps_per_epoch
    from a2v.train import TrainConfig

    with torch.device("meta"):
        task = make_task(paper_cfg, "decoder")
    with pytest.raises(ConfigError, match="warmup_epochs"):
        task.schedulers({"main": task.optimizers(task.modules(), paper_cfg.train_decoder)["main"]},
                        paper_cfg.train_decoder)
    assert steps_per_epoch(1000, TrainConfig(batch_size=64)) == 15  # the last partial batch is dropped
    assert steps_per_epoch(1000, TrainConfig(batch_size=64, grad_accum_steps=2)) == 7


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_encoder_lr_key_takes_effect(paper_cfg):
    from a2v.recipes.face.train import make_task

    cfg = replace(paper_cfg, ["train_encoder.lr=3e-4", "voice.lr_decay=0.5", "voice.lr_decay_every_steps=2"])
    task = make_task(cfg, "encoder")
    opt = task.optimizers(task.modules(), cfg.train_encoder)["main"]
    sched = task.schedulers({"main": opt}, cfg.train_encoder)["main"]
    assert isinstance(opt, Lamb) and opt.param_groups[0]["lr"] == pytest.approx(3e-4)
    for _ in range(2):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1.5e-4)
    with pytest.raises(ConfigError, match="voice.lr"):  # the old, ignored key is refused
        replace(paper_cfg, ["voice.lr=1e-2"])


def _attention(net: torch.nn.Module) -> tuple[list, list]:
    self_attn = [m for n, m in net.named_modules() if n.endswith("attn1")]
    cross = [m for n, m in net.named_modules() if n.endswith("attn2")]
    return self_attn, cross


def test_sr_512_has_attention_and_cross_attention_on_the_embedding(paper_cfg):
    from a2v.recipes.face.superres import SuperResUNet

    assert paper_cfg.superres.image_size_px == 512
    with torch.device("meta"):
        net = SuperResUNet(paper_cfg.superres, paper_cfg.embedding.dim)
    self_attn, cross = _attention(net)
    # coarsest level (32 px, 1024 channels): 8 down + 9 up transformer blocks, 1 in the middle block
    assert len(self_attn) == len(cross) == 8 + 9 + 1
    assert all(a.heads == 4 and a.inner_dim == 1024 for a in self_attn + cross)
    assert all(c.to_k.in_features == 512 and c.to_v.in_features == 512 for c in cross)  # the face embedding
    assert [type(b).__name__ for b in net.unet.down_blocks][-1] == "CrossAttnDownBlock2D"
    assert type(net.unet.mid_block).__name__ == "UNetMidBlock2DCrossAttn"


def test_attention_at_a_size_that_is_no_level_is_refused():
    with pytest.raises(ConfigError, match=r"superres.attention_resolutions_px \[16\]"):
        FaceConfig(superres=SuperResConfig(image_size_px=512, attention_resolutions_px=(16,)))
    with pytest.raises(ConfigError, match="decoder.attention_resolutions_px"):
        FaceConfig(decoder=FaceConfig().decoder.__class__(attention_resolutions_px=(4,)))
