"""`a2v demo`: a talking astronaut from eSpeak NG speech, offline; files, report and measured sync."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("facenet_pytorch")
pytest.importorskip("dlib")
pytest.importorskip("skimage.data")


@pytest.mark.slow
def test_demo_writes_video_report_and_pictures(tmp_path):
    from a2v.errors import MissingDependencyError
    from a2v.recipes.lipsync.demo import run_demo
    from a2v.video import load_image, probe

    try:
        report = run_demo(tmp_path, progress=False, text="Hello, I am a talking photo.")
    except MissingDependencyError as e:  # no eSpeak NG on this machine
        pytest.skip(str(e))
    names = {
        "demo.mp4",
        "demo_report.json",
        "demo_frames.png",
        "demo_sync.png",
        "demo_speech.wav",
        "demo_face.png",
    }
    assert names <= {p.name for p in tmp_path.iterdir()}
    info = probe(tmp_path / "demo.mp4")
    assert info.has_audio and info.num_frames == report["frames"] and info.fps == pytest.approx(25.0)
    saved = json.loads((tmp_path / "demo_report.json").read_text())
    assert saved["frames"] == report["frames"] and saved["text"] == "Hello, I am a talking photo."
    m = report["measured"]
    assert m["face_frames"] == report["frames"]  # landmarks found on every output frame
    # Measured on the written frames: the synthetic voice drives the mouth (~0.7 on this clip);
    # 0.5 is the mean of real GRID speakers measured the same way (see test_driven_sync.py).
    assert m["sync_corr"] > 0.5
    assert m["sync_corr"] - m["shuffled_audio_corr"] > 0.25
    assert m["av_sync_conf"] > m["av_sync_conf_audio_shifted_0.5s"] + 0.1  # landmark measure: own audio first
    assert abs(m["av_offset_frames"]) <= 2
    sheet = load_image(tmp_path / "demo_frames.png")
    plot = load_image(tmp_path / "demo_sync.png")
    assert sheet.shape[1] > sheet.shape[0] and plot.shape == (260, 800, 3)
    assert np.std(sheet) > 10
