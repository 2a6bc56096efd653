"""fit never reports success for an unusable model: held-out verdict, weight check, resume, lower-face renderer."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from lipsync_testutil import train_renderer
from test_lipsync_pipeline import TEMPLATE_CFG, make_talking_video

from a2v.errors import InputError, MissingWeightsError

REPO = Path(__file__).resolve().parents[3]
TINY_SETS = ["--set", "stage2.template.min_face_px=80", "--set", "stage2.template.detect_every_frames=5"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    pytest.importorskip("skimage")
    path = tmp_path_factory.mktemp("clip") / "anna.mp4"
    make_talking_video(path, seconds=3.0)
    return path


@pytest.fixture(scope="module")
def tiny_fit(clip, tmp_path_factory) -> tuple[Path, int]:
    """`a2v lipsync fit --preset tiny` (2 renderer steps, 4 stage 1 steps) -> (folder, exit status)."""
    from a2v.cli import main

    out = tmp_path_factory.mktemp("fit") / "anna"
    code = main(["lipsync", "fit", "--video", str(clip), "--out", str(out), "--preset", "tiny", "--device", "cpu",
                 "--no-progress", *TINY_SETS])
    return out, code


@pytest.mark.slow
def test_tiny_fit_is_not_usable_exits_nonzero_and_generate_refuses(tiny_fit, clip, tmp_path, capsys) -> None:
    from a2v.cli import main
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    out, code = tiny_fit
    assert code == 1
    rep = json.loads((out / "fit.json").read_text())
    v = rep["verdict"]
    assert v["usable"] is False
    assert any("too little video" in r for r in v["reasons"]) and any("too few renderer steps" in r for r in v["reasons"])
    m = v["metrics"]
    assert m["holdout_frames"] == 25 and m["renderer"]["frames"] == 25  # 3 s clip: its last second held out
    assert m["renderer"]["psnr_db"] < 25 and {c["name"] for c in v["checks"] if not c["ok"]} >= {"renderer PSNR (dB)"}
    assert rep["estimate"]["renderer_s_per_step"] >= 0 and rep["estimate"]["stage1_s"] >= 0  # timed before training
    assert (out / "work" / "template" / "template.json").is_file()  # kept for --resume

    video = tmp_path / "out.mp4"
    assert main(["lipsync", "generate", "--model", str(out), "--audio", str(clip), "-o", str(video)]) == 2
    assert "NOT USABLE" in capsys.readouterr().err and not video.exists()
    with pytest.raises(InputError, match="NOT USABLE.*too little video"):
        LipSyncPipeline.from_pretrained(out)
    pipe = LipSyncPipeline.from_pretrained(out, allow_unusable=True)  # explicit opt-in still loads
    assert pipe.renderer is not None and pipe.template.speaker == "anna"
    assert main(["lipsync", "generate", "--model", str(out), "--audio", str(clip), "-o", str(video),
                 "--allow-unusable", "--no-progress", "--device", "cpu"]) == 0  # the same from the command line
    assert "warning:" in capsys.readouterr().err and video.is_file()


@pytest.mark.slow
def test_fit_resumes_from_its_work_folder(tiny_fit, clip, monkeypatch) -> None:
    from a2v.config import load_config
    from a2v.recipes.lipsync import template as template_mod
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person

    out, _ = tiny_fit
    cfg = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "tiny.yaml",
                      ["stage2.template.min_face_px=80", "stage2.train.max_steps=3", "stage2.check.estimate_steps=0"])
    with pytest.raises(InputError, match="--resume"):
        fit_person(clip, out, cfg, progress=False, device="cpu")  # refuses to overwrite without --resume

    def no_tracking(*a, **k):
        raise AssertionError("resume must reuse the tracked template of the work folder")

    monkeypatch.setattr(template_mod, "prepare_template", no_tracking)
    fit_person(clip, out, cfg, progress=False, device="cpu", resume=True)
    rep = json.loads((out / "fit.json").read_text())
    assert rep["renderer"]["steps"] == 3  # continued from step 2 to the new max_steps
    ckpts = sorted(p.name for p in (out / "work" / "renderer" / "checkpoints").iterdir() if p.is_dir())
    assert ckpts[-1].endswith("3") and any(c.endswith("2") for c in ckpts)


def test_unfinished_work_folder_needs_resume(clip, tmp_path) -> None:
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person

    (tmp_path / "o" / "work").mkdir(parents=True)
    with pytest.raises(InputError, match="unfinished fit.*--resume"):
        fit_person(clip, tmp_path / "o", LipSyncConfig(), progress=False)


def test_missing_vgg_weights_fail_before_any_tracking_or_training(clip, tmp_path, monkeypatch) -> None:
    from a2v.recipes.lipsync import template as template_mod
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person

    def no_tracking(*a, **k):
        raise AssertionError("the weight check must come before tracking")

    monkeypatch.setattr(template_mod, "prepare_template", no_tracking)
    cfg = LipSyncConfig()
    missing = tmp_path / "nowhere" / "vgg19-dcbb9e9d.pth"
    stage2 = replace(cfg.stage2, renderer=replace(cfg.stage2.renderer, lambda_vgg=10.0, vgg_weights_path=str(missing)))
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        fit_person(clip, tmp_path / "o", cfg, progress=False, stage2=stage2)
    assert not (tmp_path / "o").exists()


def test_verdict_thresholds_and_reasons() -> None:
    from a2v.recipes.lipsync.fit_check import FitCheckConfig, format_verdict, holdout_start, make_verdict

    cfg = FitCheckConfig()
    good = {"renderer": {"psnr_db": 28.0, "ssim": 0.85}, "mouth": {"ratio": 0.5},
            "sync": {"sync_corr": 0.4, "chance_corr": 0.1}}
    v = make_verdict(good, cfg, clip_s=90, stage1_steps=1000, renderer_steps=1500)
    assert v["usable"] and v["reasons"] == [] and format_verdict(v).endswith("verdict: usable")
    bad = {**good, "sync": {"sync_corr": 0.3, "chance_corr": 0.35}}  # below the shuffled-audio chance level
    v = make_verdict(bad, cfg, clip_s=8, stage1_steps=1000, renderer_steps=200)
    assert not v["usable"]
    assert v["reasons"][0].startswith("too little video: 8.0 s") and "too few renderer steps: 200" in v["reasons"][1]
    assert "sync correlation" in v["reasons"][-1] and "NOT USABLE" in format_verdict(v)
    nan = {**good, "renderer": {"psnr_db": float("nan"), "ssim": 0.9}}
    assert not make_verdict(nan, cfg, clip_s=90, stage1_steps=1000, renderer_steps=1500)["usable"]
    assert holdout_start(3000, cfg) == 3000 - 250 and holdout_start(1000, cfg) == 850 and holdout_start(75, cfg) == 50 and holdout_start(30, cfg) == 20


def test_lower_face_paste_back_touches_only_the_lower_face() -> None:
    from lipsync_testutil import base_face

    from a2v.face.crop import CropTransform
    from a2v.recipes.lipsync.template import lower_face_boxes

    lm = (base_face() * 80 + [160, 120]).astype(np.float32)  # (68,2) px: eyes near y=88, chin near y=192
    box = lower_face_boxes(lm[None])[0]  # (4,)
    assert box[1] == pytest.approx(lm[33, 1]) and box[3] == pytest.approx(lm[8, 1])
    frame = np.random.default_rng(0).integers(0, 255, (288, 360, 3), dtype=np.uint8)
    t = CropTransform.from_box(box, frame.shape[:2], 128, margin_frac=0.1)
    out = t.paste_back(frame, np.full((128, 128, 3), 255, np.uint8), feather_px=12.8)
    ys, xs = np.nonzero((out != frame).any(-1))
    eyes_y = lm[36:48, 1].max()
    assert len(ys) > 1000
    assert ys.min() > eyes_y  # nothing at or above the eyes changes
    assert xs.min() >= lm[2:15, 0].min() - 5 and xs.max() <= lm[2:15, 0].max() + 5  # within the jaw's width


@pytest.mark.slow
def test_mouth_region_renderer_overfits_a_few_frames(clip) -> None:
    import torch

    from a2v.recipes.lipsync.fit_check import measure_renderer
    from a2v.recipes.lipsync.renderer import Renderer, RendererConfig
    from a2v.recipes.lipsync.template import TemplatePairs, open_frames, prepare_template

    tmpl = prepare_template(clip, replace(TEMPLATE_CFG, region="mouth", margin_frac=0.1))
    cfg = RendererConfig(resolution_px=64, ngf=16, ndf=8, n_downsample_global=2, n_blocks_global=1, num_D=1,
                         n_layers_D=2, lambda_vgg=0.0, lambda_l1=10.0, lr=2e-3)
    torch.manual_seed(0)
    r = Renderer(cfg)
    ids = np.array([0, 20, 40, 60])
    with open_frames(tmpl) as frames:
        pairs = TemplatePairs(tmpl, frames, 64, frame_ids=ids)
        batch = {k: torch.stack([pairs[i][k] for i in range(len(pairs))]) for k in ("map", "frame")}
        before = measure_renderer(r, tmpl, frames, ids)["psnr_db"]
        train_renderer(r, batch, 80)  # ~29 dB after 80 steps (seed 0)
        r.generator.eval()
        after = measure_renderer(r, tmpl, frames, ids)
    assert after["frames"] == 4 and after["psnr_db"] > 24.0 > before


def test_cpu_preset_renders_the_lower_face_without_vgg_weights() -> None:
    from a2v.config import load_config
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit_check import check_weights

    cpu = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "cpu.yaml")
    paper = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "paper.yaml")
    assert cpu.stage2.template.region == "mouth" and paper.stage2.template.region == "face"
    assert cpu.stage2.renderer.resolution_px == 128 and cpu.stage2.renderer.lambda_vgg == 0
    assert len(check_weights(cpu.stage2.renderer)) == 1  # the dlib landmark model only


def test_short_clip_warning_comes_before_tracking(clip, tmp_path, monkeypatch, capsys) -> None:
    from a2v.recipes.lipsync import template as template_mod
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person, tiny_stage2

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(template_mod, "prepare_template", stop)
    with pytest.raises(KeyboardInterrupt):
        fit_person(clip, tmp_path / "o", LipSyncConfig(), progress=False, stage2=tiny_stage2())
    out = " ".join(capsys.readouterr().err.split())  # the a2v console writes to stderr
    assert "is 3.0 s long; a usable model needs at least 60 s" in out


def test_generate_with_the_mouth_region_changes_only_the_lower_face(clip, tmp_path) -> None:
    from test_lipsync_pipeline import _read, tiny_pipeline

    from a2v.audio import load_audio
    from a2v.recipes.lipsync.template import open_frames, prepare_template

    tmpl = prepare_template(clip, replace(TEMPLATE_CFG, region="mouth", margin_frac=0.1))
    wav = load_audio(clip, 16000)
    pipe = tiny_pipeline(tmpl, wav)  # untrained renderer: the lower face becomes noise
    pipe.generate(wav[:16000], tmp_path / "out.mp4", progress=False)
    got = _read(tmp_path / "out.mp4")
    assert len(got) == 25
    with open_frames(tmpl) as frames:
        for i in (0, 12, 24):
            diff = np.abs(got[i].astype(np.float32) - frames[i].astype(np.float32)).mean(-1)  # (H,W)
            eyes_y = int(np.ceil(tmpl.landmarks[i, 36:48, 1].max()))
            box = tmpl.crop_boxes()[i]
            below = diff[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])]
            above = diff[: eyes_y + 1].mean()
            assert above < 4.0  # eyes and above: the template's pixels, re-encoded (codec noise only)
            assert below.mean() > 10.0 and below.mean() > 4 * above  # the lower face is rendered
