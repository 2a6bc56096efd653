"""Evaluation as in the paper: RMSE/PSNR/SSIM on known differences, LPIPS with VGG, the I3D "FID" column,
one table row per evaluated model x condition x size (64 / 96 / 112, each trainable with --size)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from a2v.config import load_config
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.evaluate import frame_metrics, table_rows


def test_metrics_and_table_layout() -> None:
    a = np.full((3, 16, 16), 100, np.uint8)
    m = frame_metrics(a, a + 10)
    assert m["rmse"] == pytest.approx(10.0) and m["psnr"] == pytest.approx(20 * np.log10(255 / 10))
    assert frame_metrics(a, a)["ssim"] == pytest.approx(1.0)
    header, rows = table_rows({("DNN", "A", 64): {"rmse": 1.0, "psnr": 2.0, "ssim": 0.5},
                               ("Diffusion", "A+T", 112): {"rmse": 3.0, "psnr": 4.0, "ssim": 0.25, "lpips": 0.1,
                                                           "fid": 12.5},
                               ("Diffusion", "A+T", 96): {"rmse": 3.5, "psnr": 4.0, "ssim": 0.25}})
    assert header == ["Model", "Cond", "Size", "RMSE", "PSNR", "SSIM", "LPIPS", "FID (I3D)"]
    assert rows == [["DNN", "A", "64", "1", "2", "0.5", "-", "-"],
                    ["Diffusion", "A+T", "96", "3.5", "4", "0.25", "-", "-"],
                    ["Diffusion", "A+T", "112", "3", "4", "0.25", "0.1", "12.5"]]


def test_paper_metric_settings() -> None:
    m = load_config(TongueConfig, "configs/tongue/paper.yaml", []).metrics
    assert m.lpips_net == "vgg"


def test_output_size_gives_a_model_per_table_size() -> None:
    cfg = load_config(TongueConfig, "configs/tongue/paper.yaml", [])
    c64, c96, c112 = (cfg.with_output_size(s) for s in (64, 96, 112))
    assert (c64.num_stages, c64.stage_size(0)) == (1, 64)
    assert (c96.num_stages, c96.stage_size(0), c96.stage_size(1)) == (2, 64, 96)
    assert (c112.num_stages, c112.stage_size(1)) == (2, 112)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from a2v.recipes.tongue.data import prepare_folder
    from a2v.recipes.tongue.synthetic import make_synthetic_corpus

    root = tmp_path_factory.mktemp("evalcorpus")
    make_synthetic_corpus(root / "raw", n_utterances=4, seconds=0.4, fps=60.0, seed=3)
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml", [])
    prepare_folder([root / "raw"], root / "prep", cfg.data, 32, progress=False)
    return root / "prep"


def _pipeline(folder, size: int, i3d: str = "") -> str:
    """An untrained tiny pipeline at ``size`` px (log-mel, A), saved to ``folder``."""
    from a2v.recipes.tongue.model import ConditionEncoder, build_denoiser
    from a2v.recipes.tongue.pipeline import TonguePipeline

    sets = ["sampler.steps=2", "sampler.name=euler"] + ([f"metrics.i3d_weights={i3d}", "metrics.i3d_width=0.0625"]
                                                        if i3d else [])
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml", sets).with_output_size(size)
    enc = ConditionEncoder(cfg.cond)
    torch.manual_seed(size)
    TonguePipeline(cfg, [build_denoiser(cfg, enc.audio_dim, None, s) for s in range(cfg.num_stages)],
                   enc).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_i3d(tmp_path_factory):
    from a2v.metrics.i3d import I3DConfig, InceptionI3d

    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("i3d") / "i3d_tiny.pt"
    torch.save(InceptionI3d(I3DConfig(width=0.0625)).state_dict(), p)
    return str(p)


def test_evaluate_uses_vgg_lpips_and_i3d_fid(prepared, tiny_i3d, tmp_path, monkeypatch) -> None:
    import a2v.metrics as metrics
    from a2v.recipes.tongue.evaluate import evaluate_pipeline
    from a2v.recipes.tongue.pipeline import TonguePipeline

    asked = {}

    def fake_lpips(net="alex", weights_path=None, device="cpu"):
        asked["net"] = net

        def model(x, y, normalize=False):
            return (x - y).abs().mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1)  # (B,3,H,W)->(B,1,1,1)

        return model

    monkeypatch.setattr(metrics, "build_lpips", fake_lpips)
    pipe = TonguePipeline.from_pretrained(_pipeline(tmp_path / "p32", 32, tiny_i3d))
    res = evaluate_pipeline(pipe, prepared, progress=False)
    assert asked["net"] == "vgg"
    assert res["n_utterances"] == 1 and res["lpips"] > 0
    assert res["fid"] > 0 and res["fid_clips"] == 3  # 24 held-out frames in clips of 8


def test_evaluate_cli_rows_per_size_and_missing_i3d_named(prepared, tmp_path, monkeypatch) -> None:
    from a2v.recipes.tongue.cli import app

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))
    p16, p32 = _pipeline(tmp_path / "p16", 16), _pipeline(tmp_path / "p32", 32)
    res = CliRunner().invoke(app, ["evaluate", "-m", p16, "-m", p32, "-d", str(prepared), "--no-progress",
                                   "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "FID (I3D)" in out and "rgb_imagenet.pt" in out and "vgg16-397923af.pth" in out
    assert re.search(r"Diffusion \(ours\) │ A │ 16 │", out) and re.search(r"Diffusion \(ours\) │ A │ 32 │", out)
    rows = json.loads((tmp_path / "r.json").read_text())
    assert all(r["not_measured"] == ["lpips", "fid"] for r in rows.values())  # the JSON says what "-" means
    assert any("rgb_imagenet.pt" in n for n in rows["Diffusion (ours) | A | 16"]["notes"])


def test_no_held_out_utterances_is_said_with_the_numbers(tmp_path) -> None:
    from a2v.recipes.tongue.data import prepare_folder
    from a2v.recipes.tongue.evaluate import evaluate_pipeline
    from a2v.recipes.tongue.pipeline import TonguePipeline
    from a2v.recipes.tongue.synthetic import make_synthetic_corpus

    make_synthetic_corpus(tmp_path / "raw", n_utterances=2, seconds=0.2, fps=60.0, seed=5)
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml", ["data.holdout_fraction=0"])
    prepare_folder([tmp_path / "raw"], tmp_path / "prep", cfg.data, 32, progress=False)
    notes: list[str] = []
    pipe = TonguePipeline.from_pretrained(_pipeline(tmp_path / "p", 32))
    res = evaluate_pipeline(pipe, tmp_path / "prep", progress=False, use_lpips=False, use_fid=False, notes=notes)
    assert res["n_utterances"] == 2 and any("training ones included" in n for n in notes)
