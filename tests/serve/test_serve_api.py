"""HTTP API: health, a real lip-sync round trip, and clear errors for bad uploads."""

from __future__ import annotations

import json

import httpx
import pytest

from a2v.errors import InputError
from a2v.serve import jobs
from a2v.serve.config import ServeConfig


def test_health_lists_models_and_limits(server):
    url, _ = server
    r = httpx.get(f"{url}/api/v1/health", timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["models"]["lipsync"] == []
    assert body["limits"] == {"max_upload_mb": 5.0, "max_audio_s": 30.0, "max_video_s": 120.0, "max_pixels": 4096 * 4096,
                              "max_decoded_mb": 1024.0, "concurrency": 1, "queue_size": 16, "job_timeout_s": 1800.0,
                              "keep_results_s": 3600}
    assert body["queue"] == {"waiting": 0, "running": 0, "queue_size": 16, "concurrency": 1}
    assert body["auth"] is False


def test_serve_options_are_checked(capsys):
    from a2v.cli import main

    assert main(["serve", "--auth", "short"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["serve", "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be > 0" in capsys.readouterr().err
    assert main(["serve", "--job-timeout-s", "nan"]) == 2


def test_lipsync_round_trip_returns_playable_mp4(server, inputs, tmp_path):
    from a2v.video import probe

    url, _ = server
    face, speech = inputs
    with face.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, data={"mode": "envelope"}, timeout=300)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(r.content)
    info = probe(out)
    assert info.has_audio and info.num_frames > 10
    assert json.loads(r.headers["x-a2v-report"])


def test_missing_face_wrong_type_and_too_large_are_clear_errors(server, inputs, tmp_path):
    url, _ = server
    _, speech = inputs
    with speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"audio": a}, timeout=60)
    assert r.status_code == 400 and "no face file" in r.json()["error"]
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with bad.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, timeout=60)
    assert r.status_code == 400 and "not a readable image, audio or video file" in r.json()["error"]
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 6_000_000)
    with big.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, timeout=60)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]
    with bad.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, data={"mode": "x"}, timeout=60)
    assert r.status_code == 400


def test_check_upload_and_audio_length_limit(tmp_path):
    import numpy as np

    from a2v.audio import save_audio

    cfg = ServeConfig(max_audio_s=1.0)
    with pytest.raises(InputError, match="no audio file"):
        jobs.check_upload(None, "audio", cfg)
    save_audio(tmp_path / "long.wav", np.zeros(32000, np.float32), 16000)
    path = jobs.check_upload(tmp_path / "long.wav", "audio", cfg)
    with pytest.raises(InputError, match="over the 1 s limit"):
        jobs.load_speech(path, cfg)


def test_workspace_sweeps_old_jobs_and_closes(tmp_path):
    import os

    ws = jobs.Workspace(keep_s=100)
    old, new = ws.new_job(), ws.new_job()
    os.utime(old, (0, 0))
    assert ws.sweep() == 1
    assert not old.exists() and new.exists()
    ws.close()
    assert not ws.root.exists()


def test_models_are_listed_from_the_models_folder(tmp_path):
    (tmp_path / "lipsync" / "anna").mkdir(parents=True)
    (tmp_path / "lipsync" / "anna" / "pipeline.json").write_text("{}")
    (tmp_path / "lipsync" / "empty").mkdir()
    assert jobs.list_models(tmp_path, "lipsync") == ["anna"]
    with pytest.raises(InputError, match="no lipsync model named 'bob'"):
        jobs.model_path(tmp_path, "lipsync", "bob")


def test_gradio_client_api_lists_the_lipsync_endpoint(server):
    from gradio_client import Client

    url, _ = server
    api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    assert "/lipsync" in api["named_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/lipsync"]["parameters"]]
    assert params[:3] == ["photo_path", "clip_path", "audio_path"]


def test_ui_lipsync_takes_a_language_and_refuses_unknown_ones(server, inputs):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = server
    face, speech = inputs
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    params = {p["parameter_name"]: p for p in api["named_endpoints"]["/lipsync"]["parameters"]}
    assert params["lang"]["parameter_default"] == "auto"
    for hostile in ("xx", "../../etc/passwd", "en" * 500):
        with pytest.raises(AppError):
            client.predict(handle_file(str(face)), None, handle_file(str(speech)), "", "default (no training)",
                           "envelope", 1.0, True, hostile, api_name="/lipsync")
    out, rep = client.predict(handle_file(str(face)), None, handle_file(str(speech)), "", "default (no training)",
                              "auto", 1.0, True, "zh", api_name="/lipsync")
    assert rep["mode"] == "envelope" and "zh" in rep["mode_reason"], rep
