"""``a2v lipsync generate/evaluate`` are scriptable: JSON report on stdout (or --report), one-line
errors with exit 2 before any processing or model loading, the same option names on both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from a2v.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("skimage")
    import soundfile as sf
    from skimage import data
    from skimage.transform import resize

    from a2v.audio import save_audio, synthesize_speech
    from a2v.video import write_png

    d = tmp_path_factory.mktemp("cli")
    photo = write_png(d / "face.png", (resize(data.astronaut(), (256, 256)) * 255).astype(np.uint8))
    speech = synthesize_speech("Bob will pay me back.", sr=16000)
    wav = save_audio(d / "speech.wav", speech, 16000)
    silent = d / "silent.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    truncated = d / "truncated.wav"
    truncated.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])  # header still declares the full length
    return {"photo": photo, "wav": wav, "silent": silent, "truncated": truncated, "dir": d}


@pytest.fixture
def no_models(monkeypatch):
    """Any model loading or processing fails the test: errors must come first."""
    import a2v.metrics.sync as sync
    import a2v.recipes.lipsync.driven.generate as gen
    import a2v.recipes.lipsync.pipeline as pipe

    def boom(*a, **k):
        raise AssertionError("processing started before the inputs were checked")

    monkeypatch.setattr(gen, "generate_driven", boom)
    monkeypatch.setattr(pipe.LipSyncPipeline, "from_pretrained", boom)
    monkeypatch.setattr(sync, "measure_video_sync", boom)
    monkeypatch.setattr(sync, "video_landmarks", boom)


def one_error_line(capsys, *words: str) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
    assert "Traceback" not in cap.err and cap.out == ""
    for w in words:
        assert w in lines[0]
    return lines[0]


def test_generate_report_is_one_json_object_on_stdout_and_in_report_file(files, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    args = ["lipsync", "generate", "--face", str(files["photo"]), "--audio", str(files["wav"]), "-o", str(out),
            "--mode", "envelope", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON object
    assert report["output"] == str(out) and report["frames"] > 20 and report["mode"] == "envelope"
    assert report["driven_av_sync_conf"] > 0.1  # the articulated envelope follows the speech
    assert main([*args, "--report", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == report["frames"]


@pytest.mark.parametrize("name", ["out.avi", "out"])
def test_generate_bad_output_name_is_one_line_before_processing(files, tmp_path, capsys, no_models, name):
    code = main(["lipsync", "generate", "--face", str(files["photo"]), "--audio", str(files["wav"]),
                 "-o", str(tmp_path / name)])
    assert code == 2
    one_error_line(capsys, ".mp4")
    assert not (tmp_path / name).exists()


def test_truncated_and_silent_audio_are_errors_before_models(files, tmp_path, capsys, no_models):
    base = ["lipsync", "generate", "--face", str(files["photo"]), "-o", str(tmp_path / "o.mp4")]
    assert main([*base, "--audio", str(files["truncated"])]) == 2
    one_error_line(capsys, "truncated")
    assert main([*base, "--audio", str(files["silent"])]) == 2
    one_error_line(capsys, "silent")
    assert main([*base, "--audio", str(files["wav"]), "--language", "klingon"]) == 2
    one_error_line(capsys, "language")
    assert main([*base, "--audio", str(files["wav"]), "--model", str(tmp_path)]) == 2
    one_error_line(capsys, "pipeline.json")


def test_corrupt_face_clip_fails_before_the_detector_loads(files, tmp_path, capsys, monkeypatch):
    import a2v.face

    def boom(*a, **k):
        raise AssertionError("the face detector loaded before the clip was checked")

    monkeypatch.setattr(a2v.face, "make_detector", boom)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video at all" * 100)
    assert main(["lipsync", "generate", "--face", str(clip), "--audio", str(files["wav"]),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    one_error_line(capsys, "clip.mp4")


def test_evaluate_rejects_image_silent_audio_and_truncated_wav(files, tmp_path, capsys, no_models):
    from a2v.video import VideoWriter

    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25, audio=np.zeros(16000, np.float32), audio_sr=16000) as w:
        for _ in range(25):
            w.write(np.full((64, 64, 3), 128, np.uint8))
    assert main(["lipsync", "evaluate", "--video", str(files["photo"]), "--no-progress"]) == 2
    one_error_line(capsys, "is an image, not a video")
    assert main(["lipsync", "evaluate", "--video", str(video), "--no-progress"]) == 2  # its own track is silent
    one_error_line(capsys, "silent")
    assert main(["lipsync", "evaluate", "--video", str(video), "--audio", str(files["truncated"])]) == 2
    one_error_line(capsys, "truncated")
    assert main(["lipsync", "evaluate", "--video", str(video), "--audio", str(files["wav"]),
                 "--syncnet", str(tmp_path / "missing.model")]) == 2
    one_error_line(capsys, "SyncNet")


def test_generate_and_evaluate_share_option_names():
    from typer.main import get_command

    from a2v.recipes.lipsync.cli import app

    cmds = get_command(app).commands
    opts = {name: {o for p in cmds[name].params for o in (*p.opts, *p.secondary_opts)} for name in ("generate", "evaluate")}
    shared = {"--no-progress", "--progress", "--report", "--audio", "-a", "--device", "--detector"}
    assert shared <= opts["generate"] and shared <= opts["evaluate"]
