"""`a2v serve --langid-model`: the server's own Whisper decides lipsync's auto mode; a request can
neither name a model path nor learn the server's path from the report."""

from __future__ import annotations

import json

import httpx
from serve_testutil import running


def test_server_whisper_decides_auto_mode_and_no_path_leaks(tmp_path, inputs):
    from a2v.serve.app import build_app
    from a2v.serve.config import ServeConfig
    from a2v.tiny_models import write_tiny_model

    whisper = write_tiny_model("whisper", tmp_path / "secret-dir" / "wh-zh", language="zh")
    face, speech = inputs
    app = build_app(tmp_path / "models", ServeConfig(max_upload_mb=5.0, max_audio_s=30.0, langid_model=str(whisper)))
    with running(app) as url:
        assert httpx.get(f"{url}/api/v1/health").json()["language_id"] is True
        files = {"face": face.read_bytes(), "audio": speech.read_bytes()}
        r = httpx.post(f"{url}/api/v1/lipsync", files=files, data={"mode": "auto"}, timeout=300)
        assert r.status_code == 200, r.text
        head = r.headers["x-a2v-report"]
        rep = json.loads(head)
        assert rep["mode"] == "envelope" and rep["language_id"]["code"] == "zh", rep
        assert "secret-dir" not in head and str(tmp_path) not in head
        # a request cannot point the server at a model of its choosing
        r = httpx.post(f"{url}/api/v1/lipsync", files=files, data={"langid_model": "/etc"}, timeout=60)
        assert r.status_code == 400 and "langid_model" in r.json()["error"], r.text


def test_cli_refuses_a_missing_langid_model_at_start(tmp_path):
    from typer.testing import CliRunner

    from a2v.cli import app

    res = CliRunner().invoke(app, ["serve", "--langid-model", str(tmp_path / "nope"), "--port", "1"])
    assert res.exit_code != 0
    assert "nope" in (res.output + str(res.exception))
