"""Lip-sync configs: paper.yaml = the dataclass defaults, tiny.yaml loads, inconsistent sizes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2v.config import load_config, to_dict
from a2v.errors import ConfigError
from a2v.recipes.lipsync.config import LipSyncConfig, LipSyncDataConfig, LipSyncEvalConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "lipsync"


def test_paper_yaml_is_the_defaults():
    cfg = load_config(LipSyncConfig, CONFIGS / "paper.yaml")
    assert cfg == LipSyncConfig()
    assert (cfg.data.window_audio_frames, cfg.data.window_video_frames, cfg.data.pca_components) == (200, 50, 10)
    assert (cfg.model.channels, cfg.model.kernel_size, cfg.model.dilations) == (256, 3, (1, 2, 4, 8))
    assert cfg.eval.overlap_audio_frames == 40


def test_tiny_yaml_is_small_and_consistent():
    cfg = load_config(LipSyncConfig, CONFIGS / "tiny.yaml", ["train.max_steps=2"])
    assert cfg.train.max_steps == 2 and cfg.model.channels <= 32
    assert cfg.model.window_video_frames == cfg.data.window_video_frames == 20
    assert load_config(LipSyncConfig, None, []) == LipSyncConfig()
    assert to_dict(cfg)["model"]["dilations"] == [1, 2]


@pytest.mark.parametrize(
    "sets",
    [
        ["data.window_video_frames=40"],  # audio window no longer 4x
        ["model.out_dim=8"],  # != data.pca_components
        ["model.window_audio_frames=80", "model.window_video_frames=20"],  # model != data windows
        ["data.holdout_fraction=1.0"],
        ["eval.position_hop_video_frames=0"],
        ["model.nonexistent=1"],
    ],
)
def test_inconsistent_settings_are_refused(sets):
    with pytest.raises(ConfigError):
        load_config(LipSyncConfig, CONFIGS / "paper.yaml", sets)


def test_sub_configs_check_themselves():
    with pytest.raises(ConfigError):
        LipSyncDataConfig(train_hop_video_frames=0)
    with pytest.raises(ConfigError):
        LipSyncEvalConfig(batch_windows=0)



def test_stage2_comes_from_the_yaml_presets():
    from a2v.recipes.lipsync.config import Stage2Config
    from a2v.recipes.lipsync.fit import tiny_stage2

    configs = Path(__file__).resolve().parents[3] / "configs" / "lipsync"
    assert load_config(LipSyncConfig, configs / "tiny.yaml").stage2 == tiny_stage2()
    assert load_config(LipSyncConfig, configs / "paper.yaml").stage2 == Stage2Config()
    cfg = load_config(LipSyncConfig, configs / "tiny.yaml", ["stage2.renderer.ngf=4"])
    assert cfg.stage2.renderer.ngf == 4 and cfg.stage2.renderer.resolution_px == 64
