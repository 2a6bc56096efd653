"""``a2v info``: the report's keys, shipped weights found, cache look-ups flipped by fake caches."""

from __future__ import annotations

import importlib.util
import io

import pytest
from rich.console import Console

from a2v.info import collect_info, collect_weights, print_info


@pytest.fixture(scope="module")
def info():
    return collect_info()


def test_collect_info_keys(info):
    assert set(info) == {"versions", "devices", "optional", "weights", "weights_dirs"}
    assert {"python", "a2v", "torch", "transformers", "diffusers", "accelerate", "av"} <= set(
        info["versions"]
    )
    assert info["versions"]["a2v"] is not None
    assert {"cpu_count", "cuda_available", "cuda_devices", "mps_available"} <= set(info["devices"])
    assert info["devices"]["cpu_count"] >= 1
    assert {"face", "asr", "tts", "ui", "metrics", "video"} <= set(info["optional"])
    names = {e["name"] for entries in info["optional"].values() for e in entries}
    assert {"dlib", "facenet_pytorch", "pocketsphinx", "gradio", "torchmetrics", "lpips", "ffmpeg"} <= names
    for entries in info["optional"].values():
        for e in entries:
            assert set(e) == {"name", "available", "detail", "hint"}
            assert e["available"] or e["hint"], f"missing {e['name']} without an install hint"
    for name in (
        "facebook/wav2vec2-base",
        "openai/whisper-small",
        "LPIPS AlexNet backbone",
        "StyleGAN3 FFHQ-U 256",
    ):
        assert name in info["weights"]


@pytest.mark.parametrize(
    "package,entry",
    [
        ("facenet_pytorch", "MTCNN face detector (pnet/rnet/onet)"),
        ("face_recognition_models", "dlib 68-landmark predictor"),
        ("face_recognition_models", "dlib 128-d face model"),
        ("pocketsphinx", "pocketsphinx English model"),
    ],
)
def test_shipped_weights_available_when_installed(info, package, entry):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} not installed")
    e = info["weights"][entry]
    assert e["kind"] == "shipped" and e["available"], e


def test_missing_binary_gets_hint(monkeypatch):
    import a2v.info as mod

    monkeypatch.setattr(mod.shutil, "which", lambda name: None)
    e = mod._check_import("bin:ffmpeg", "apt install ffmpeg")
    assert not e.available and e.hint == "apt install ffmpeg"
    e = mod._check_import("a2v_no_such_package_xyz", "pip install x")
    assert not e.available and "ModuleNotFoundError" in e.detail and e.hint == "pip install x"


def test_fake_hf_cache_flips_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert not collect_weights()["facebook/wav2vec2-base"]["available"]
    snap = tmp_path / "models--facebook--wav2vec2-base" / "snapshots" / "x"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    w = collect_weights()
    assert w["facebook/wav2vec2-base"]["available"]
    assert "config only" in w["facebook/wav2vec2-base"]["detail"]
    assert not w["microsoft/wavlm-base-plus"]["available"]
    (snap / "model.safetensors").write_bytes(b"x")
    assert collect_weights()["facebook/wav2vec2-base"]["detail"] == str(snap)


def test_old_repo_name_counts_for_bert(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snap = tmp_path / "models--bert-base-chinese" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert collect_weights()["bert-base-chinese"]["available"]


def test_fake_torch_hub_flips_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert not collect_weights()["LPIPS AlexNet backbone"]["available"]
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "alexnet-owt-7be5be79.pth").write_bytes(b"x")
    (ckpt / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    w = collect_weights()
    assert w["LPIPS AlexNet backbone"]["available"]
    assert w["FID InceptionV3"]["available"]
    assert not w["FVD I3D (TorchScript)"]["available"]


def test_print_info_renders_tables(info):
    buf = io.StringIO()
    print_info(Console(file=buf, width=200), info=info)
    out = buf.getvalue()
    for text in ("Versions", "Devices", "Optional parts", "Pretrained weights", "wav2vec2-base", "torch"):
        assert text in out


def test_cli_info_runs(capsys, monkeypatch):
    import a2v.info as mod
    from a2v.cli import main

    monkeypatch.setattr(mod, "collect_optional", lambda: {})  # keep the CLI check fast
    assert main(["info"]) == 0
    assert "Pretrained weights" in capsys.readouterr().out
