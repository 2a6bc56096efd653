"""``a2v prepare face`` defaults: faces from 64 px, detector MediaPipe > MTCNN > dlib, fails once at start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from a2v.errors import MissingDependencyError

REPO = Path(__file__).resolve().parents[3]


def test_face_prepare_section_is_not_the_talk_recipes():
    from a2v.config import load_config, read_yaml
    from a2v.data.prepare import PrepareConfig
    from a2v.recipes.face.config import FaceConfig

    section = read_yaml(REPO / "configs" / "face" / "paper.yaml")["prepare"]
    cfg = load_config(PrepareConfig, None, [], base=section)
    assert cfg.min_face_px == 64.0 and cfg.min_face_px < PrepareConfig().min_face_px
    assert "detector" not in section  # chosen at start
    assert FaceConfig().prepare == section


def test_detector_order_mediapipe_then_mtcnn_then_dlib(monkeypatch):
    from a2v.recipes.face import prepare as fp

    have: set[str] = {"mediapipe", "mtcnn", "dlib"}
    monkeypatch.setattr(fp, "detector_available", lambda name: name in have)
    assert fp.choose_detector() == "mediapipe"
    have.discard("mediapipe")
    assert fp.choose_detector() == "mtcnn"
    have.discard("mtcnn")
    assert fp.choose_detector() == "dlib"
    have.clear()
    with pytest.raises(MissingDependencyError, match="no face detector"):
        fp.choose_detector()


def test_mediapipe_without_the_legacy_api_is_not_usable(monkeypatch):
    import types

    from a2v.face.detect import MediaPipeDetector
    from a2v.recipes.face.prepare import mediapipe_usable

    monkeypatch.setitem(sys.modules, "mediapipe", types.ModuleType("mediapipe"))  # like mediapipe >= 0.10.30
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object())
    assert not mediapipe_usable()
    with pytest.raises(MissingDependencyError, match="no 'solutions' API.*mediapipe<=0.10.21"):
        MediaPipeDetector()
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingDependencyError, match="no a2v extra installs it"):  # the hint does not promise one
        MediaPipeDetector()


def test_missing_detector_fails_once_before_any_clip(tmp_path, monkeypatch, capsys):
    from a2v.cli import main
    from a2v.data import prepare as engine

    calls = []
    monkeypatch.setattr(engine, "prepare_dataset", lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read")
    rc = main(["prepare", "face", "-i", str(video), "-o", str(tmp_path / "out"), "--set", "detector=mediapipe"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "MediaPipe" in err[0]
    assert calls == [] and not (tmp_path / "out").exists()


def test_default_detector_is_chosen_and_passed_on(tmp_path, monkeypatch):
    from a2v.data import prepare as engine
    from a2v.recipes.face import prepare as fp

    seen = {}

    def fake_prepare(inputs, output, cfg, *a, **k):  # noqa: ANN001, ANN202
        seen["cfg"] = cfg
        return {"items": {}, "dropped": {}, "run": {}}

    monkeypatch.setattr(engine, "prepare_dataset", fake_prepare)
    monkeypatch.setattr(engine, "format_report", lambda report: "")
    monkeypatch.setattr(fp, "detector_available", lambda name: name == "dlib")
    fp.prepare([tmp_path], tmp_path / "out", progress=False)
    assert seen["cfg"].detector == "dlib" and seen["cfg"].min_face_px == 64.0
    fp.prepare([tmp_path], tmp_path / "out", set_=["detector=dlib_cnn"], progress=False)  # given: kept
    assert seen["cfg"].detector == "dlib_cnn"
