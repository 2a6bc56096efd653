"""Attacks over real HTTP against a server on 127.0.0.1: reading server files through the UI's API,
stored XSS through the file route, cross-origin posts, foreign Host headers, missing credentials,
out-of-range fields, and server paths in errors."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from serve_testutil import running

from a2v.errors import InputError

SECRET = b"a2v-test-secret-do-not-serve"
ABS_PATH = re.compile(r"(?<![\w.])/(tmp|etc|home|root|work|usr|var)\b")


def _gradio_call(url: str, api: str, data: list) -> str:
    """Gradio's HTTP call API: POST the inputs, then read the event stream; returns the stream text."""
    r = httpx.post(f"{url}/gradio_api/call/{api}", json={"data": data}, timeout=30)
    assert r.status_code == 200, r.text
    return httpx.get(f"{url}/gradio_api/call/{api}/{r.json()['event_id']}", timeout=120).text


def _files_holding(root: Path, content: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == len(content) and p.read_bytes() == content]


def test_ui_api_cannot_read_a_server_file(server, tmp_path):
    """Naming a server path as a Gradio FileData input: refused, nothing copied, nothing served."""
    from gradio.utils import get_upload_folder

    url, _ = server
    secret = tmp_path / "secret.png"  # outside every upload folder
    secret.write_bytes(SECRET)
    fd = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    for target in (str(secret), "/etc/passwd", f"{get_upload_folder()}/../../{secret}"):
        fd = {"path": target, "meta": {"_type": "gradio.FileData"}}
        r = httpx.post(f"{url}/gradio_api/call/lipsync", timeout=30,
                       json={"data": [fd, None, fd, "", "default (no training)", "auto", 1.0, True, "auto"]})
        assert r.status_code == 400 and r.json() == {
            "error": "file inputs must be files uploaded to this server; upload the file first"}
    assert _files_holding(Path(get_upload_folder()), SECRET) == []
    for target in (str(secret), "/etc/passwd"):
        r = httpx.get(f"{url}/gradio_api/file={target}", timeout=10)
        assert r.status_code == 404 and SECRET not in r.content and b"root:" not in r.content
    # the recipe tabs too, and Gradio's queue route the browser uses
    r = httpx.post(f"{url}/gradio_api/call/talk", json={"data": [None, fd, fd, 1.0]}, timeout=30)
    assert r.status_code == 400
    r = httpx.post(f"{url}/gradio_api/queue/join", timeout=30,
                   json={"data": [fd, None, fd, "", "default (no training)", "auto", 1.0, True, "auto"], "fn_index": 0,
                         "session_hash": "abc"})
    assert r.status_code == 400
    assert _files_holding(Path(get_upload_folder()), SECRET) == []


def test_gradio_own_check_applies_when_mounted(server, tmp_path):
    """Behind the middleware, Gradio itself refuses files not uploaded by a user (defence in depth)."""
    import asyncio

    from gradio.exceptions import InvalidPathError
    from gradio.utils import get_upload_folder

    _, app = server
    blocks = app.fastapi.routes[-1].app.get_blocks()
    assert blocks.has_launched
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    fn = next(f for f in blocks.fns.values() if f.api_name == "lipsync")
    fd = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}

    async def preprocess():
        from gradio.context import LocalContext

        LocalContext.blocks.set(blocks)  # as inside a request
        return await blocks.preprocess_data(fn, [fd, None, fd, "", "default (no training)", "auto", 1.0, True, "auto"], None)

    with pytest.raises(Exception) as e:
        asyncio.run(preprocess())
    assert isinstance(e.value, InvalidPathError) or isinstance(e.value.__cause__, InvalidPathError)
    assert _files_holding(Path(get_upload_folder()), SECRET) == []


def test_ui_api_fetches_no_urls_and_old_file_routes_are_closed(server, tmp_path):
    """A FileData naming an http URL would make the server fetch it (SSRF); Gradio's proxy and old file
    routes could serve other files."""
    import http.server
    import socketserver

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(SECRET)

        def log_message(self, *args):
            pass

    url, _ = server
    with socketserver.TCPServer(("127.0.0.1", 0), Handler) as listener:
        threading.Thread(target=listener.serve_forever, daemon=True).start()
        target = f"http://127.0.0.1:{listener.server_address[1]}/internal.png"
        for fd in ({"path": target, "meta": {"_type": "gradio.FileData"}},
                   {"path": target, "url": target, "meta": {"_type": "gradio.FileData"}},
                   {"url": target, "meta": {"_type": "gradio.FileData"}}):
            r = httpx.post(f"{url}/gradio_api/call/lipsync", timeout=30,
                           json={"data": [fd, None, fd, "", "default (no training)", "auto", 1.0, True, "auto"]})
            assert r.status_code == 400 and "uploaded to this server" in r.json()["error"]
        for route in (f"/gradio_api/file={target}", f"/gradio_api/proxy={target}", "/gradio_api/file/etc/passwd",
                      "/file/etc/passwd", "/file=/etc/passwd"):
            r = httpx.get(f"{url}{route}", timeout=10)
            assert r.status_code == 404 and SECRET not in r.content and b"root:" not in r.content, route
        listener.shutdown()
    assert hits == []


def test_http_api_takes_no_paths(server):
    url, _ = server
    r = httpx.post(f"{url}/api/v1/lipsync", data={"face": "/etc/passwd", "audio": "/etc/passwd"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"].endswith(": expected a file upload")


def test_uploads_are_never_served_as_pages(server, inputs):
    url, app = server
    face, _ = inputs
    html = b"<html><script>alert(document.domain)</script></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    for name, body, ctype in (("x.html", html, "text/html"), ("x.svg", svg, "image/svg+xml")):
        r = httpx.post(f"{url}/gradio_api/upload", files={"files": (name, body, ctype)}, timeout=30)
        assert r.status_code == 200
        got = httpx.get(f"{url}/gradio_api/file={r.json()[0]}", timeout=10)
        assert got.status_code == 404 and body not in got.content
    # HTML dressed as a PNG: served only as an attachment, typed as an image, sandboxed
    r = httpx.post(f"{url}/gradio_api/upload", files={"files": ("x.png", html, "image/png")}, timeout=30)
    got = httpx.get(f"{url}/gradio_api/file={r.json()[0]}", timeout=10)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == "attachment"
    assert got.headers["x-content-type-options"] == "nosniff" and "sandbox" in got.headers["content-security-policy"]
    # the job workspace (where the API keeps uploads) is never served
    ws_root = app.state.workspace.root
    job = ws_root / "evil"
    job.mkdir(exist_ok=True)
    (job / "face.png").write_bytes(face.read_bytes())
    assert httpx.get(f"{url}/gradio_api/file={job / 'face.png'}", timeout=10).status_code == 404


def test_api_stores_uploads_under_fixed_names(tmp_path, inputs):
    from a2v.errors import InputError
    from a2v.serve import jobs
    from a2v.serve.config import ServeConfig

    face, speech = inputs
    src = tmp_path / "evil.html"
    src.write_bytes(face.read_bytes())  # a PNG under an HTML name
    job = tmp_path / "job"
    job.mkdir()
    assert jobs.stage_input(src, job, "face", ("image",), ServeConfig()).name == "face.png"
    src.write_bytes(b"<html><script>alert(1)</script></html>")
    with pytest.raises(InputError, match="face: not a readable image, audio or video file"):
        jobs.stage_input(src, job, "face", ("image",), ServeConfig())
    with pytest.raises(InputError, match="face: got an audio file, expected image"):
        jobs.stage_input(speech, job, "face", ("image",), ServeConfig())
    assert sorted(p.name for p in job.iterdir()) == ["face.png"]


def test_cross_origin_and_foreign_host_are_refused(server, inputs):
    url, _ = server
    face, speech = inputs
    files = {"face": face.read_bytes(), "audio": speech.read_bytes()}
    for headers in ({"origin": "http://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}):
        r = httpx.post(f"{url}/api/v1/lipsync", files=files, headers=headers, timeout=30)
        assert r.status_code == 403 and r.json() == {"error": "cross-origin requests are refused"}
    r = httpx.post(f"{url}/gradio_api/upload", files={"files": ("a.png", b"x")}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = httpx.get(f"{url}/api/v1/health", headers={"host": "evil.example"}, timeout=10)
    assert r.status_code == 400 and "is not served here" in r.json()["error"]
    # same origin (a browser on the UI) is fine
    r = httpx.get(f"{url}/api/v1/health", headers={"origin": url}, timeout=10)
    assert r.status_code == 200


def test_fields_are_range_checked_and_errors_are_one_json_shape(server, inputs):
    url, _ = server
    face, speech = inputs
    files = {"face": ("face.png", face.read_bytes()), "audio": ("speech.wav", speech.read_bytes())}
    cases = [
        ({"motion_scale": "nan"}, "motion_scale: nan is outside [0, 2]"),
        ({"motion_scale": "1e9"}, "motion_scale: 1e9 is outside [0, 2]"),
        ({"motion_scale": "x"}, "motion_scale: 'x' is not a number"),
        ({"blink": "maybe"}, "blink: 'maybe' is not true or false"),
        ({"mode": "../../etc"}, "mode: '../../etc' is not one of auto, phoneme, envelope"),
        ({"language": "en; rm -rf x"}, "language: 'en; rm -rf x' is not a language code such as en, de or pt-BR"),
        ({"model": "../../../etc"}, "no lipsync model named '../../../etc' on this server"),
        ({"transcript": "x" * 5000}, "transcript: 5000 characters is over the 2000 character limit"),
        ({"evil": "1"}, "unknown field 'evil'"),
    ]
    for data, msg in cases:
        r = httpx.post(f"{url}/api/v1/lipsync", files=files, data=data, timeout=30)
        assert r.status_code == 400, (data, r.text)
        assert list(r.json()) == ["error"] and r.json()["error"].startswith(msg), (data, r.text)
    r = httpx.post(f"{url}/api/v1/lipsync", content=b"\0" * 1000, headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and list(r.json()) == ["error"] and "\0" not in r.text
    three = [("face", ("a.png", b"1")), ("audio", ("b.wav", b"2")), ("face", ("c.png", b"3"))]
    r = httpx.post(f"{url}/api/v1/lipsync", files=three, timeout=30)
    assert r.status_code == 400 and r.json()["error"].startswith("bad multipart body")
    r = httpx.get(f"{url}/api/v1/nothing", timeout=10)
    assert r.status_code == 404 and list(r.json()) == ["error"]


def test_language_reaches_the_lipsync_recipe_and_no_server_path_leaks(server, inputs):
    url, _ = server
    face, speech = inputs
    with face.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, data={"language": "de"}, timeout=300)
    assert r.status_code == 200, r.text
    report = json.loads(r.headers["x-a2v-report"])
    assert report["mode"] == "envelope" and "'de' is not English" in report["mode_reason"]
    for name, value in r.headers.items():
        assert not ABS_PATH.search(value), (name, value)
    # a bad upload's error names the field, not the stored file
    with face.open("rb") as f:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": ("a.wav", b"RIFF....WAVEjunk")}, timeout=60)
    assert r.status_code == 400 and not ABS_PATH.search(r.text), r.text


def test_auth_is_required_when_set(tmp_path):
    from a2v.serve.app import build_app
    from a2v.serve.config import ServeConfig

    app = build_app(tmp_path, ServeConfig(auth="anna:correct-horse"))
    try:
        with running(app) as url:
            r = httpx.get(f"{url}/api/v1/health", timeout=10)
            assert r.status_code == 401 and r.json() == {"error": "authentication required"}
            assert r.headers["www-authenticate"].startswith("Basic")
            assert httpx.get(f"{url}/", timeout=10).status_code == 401  # the UI too
            assert httpx.get(f"{url}/api/v1/health", auth=("anna", "wrong"), timeout=10).status_code == 401
            r = httpx.get(f"{url}/api/v1/health", auth=("anna", "correct-horse"), timeout=10)
            assert r.status_code == 200 and r.json()["auth"] is True and "correct-horse" not in r.text
            r = httpx.get(f"{url}/api/v1/health", headers={"authorization": "Bearer anna:correct-horse"}, timeout=10)
            assert r.status_code == 200
    finally:
        app.state.workspace.close()


def test_allowed_host_names():
    from a2v.serve.security import allowed_host_names, host_name

    assert host_name("[::1]:7860") == "::1" and host_name("Example.org:80") == "example.org"
    assert allowed_host_names("0.0.0.0", ("A2V.example.org:443",)) == {"127.0.0.1", "localhost", "::1",
                                                                       "a2v.example.org"}
    assert "10.0.0.5" in allowed_host_names("10.0.0.5", ())


def test_public_bind_without_auth_warns():
    from a2v.serve.app import bind_warning

    assert "without --auth" in bind_warning("0.0.0.0", "")
    assert "without --auth" in bind_warning("192.168.1.20", "")
    assert bind_warning("0.0.0.0", "user:password") is None
    assert bind_warning("127.0.0.1", "") is None and bind_warning("localhost", "") is None


def test_lipsync_output_keeps_the_uploads_rate_and_channels_and_language_is_the_recipes_list(server, inputs, tmp_path):
    import av
    import soundfile as sf

    from a2v.audio import load_audio

    url, _ = server
    face, speech = inputs
    mono = load_audio(speech, sr=48000)  # (S,) at 48 kHz
    sf.write(tmp_path / "stereo.wav", np.stack([mono, 0.5 * mono], axis=1), 48000)  # (S,2)
    with face.open("rb") as f, (tmp_path / "stereo.wav").open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, data={"language": "es-MX"},
                       timeout=300)
    assert r.status_code == 200, r.text
    (tmp_path / "out.mp4").write_bytes(r.content)
    with av.open(str(tmp_path / "out.mp4")) as c:
        stream = c.streams.audio[0]
        assert (stream.rate, stream.channels) == (48000, 2)
    with face.open("rb") as f, speech.open("rb") as a:
        r = httpx.post(f"{url}/api/v1/lipsync", files={"face": f, "audio": a}, data={"language": "xx"}, timeout=60)
    assert r.status_code == 400 and "'xx' is not supported" in r.json()["error"], r.text


def test_decoded_audio_size_is_limited_whatever_the_length(tmp_path):
    import soundfile as sf

    from a2v.serve import limits

    path = tmp_path / "wide.flac"
    sf.write(path, np.zeros((192000, 8), np.float32), 192000)  # 1 s, 8 channels at 192 kHz: 6.1 MB decoded
    assert limits.check_decoded_audio_s(path, "audio", 30.0, max_mb=10.0) == pytest.approx(1.0)
    with pytest.raises(InputError, match="decoded audio is over the 5 MB limit"):
        limits.check_decoded_audio_s(path, "audio", 30.0, max_mb=5.0)
