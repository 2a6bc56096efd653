"""Memory bombs and disk use over real HTTP: inputs are measured from their headers before anything is
decoded (server RSS stays flat), request bodies are limited while they stream in, failed jobs leave
no files, and a killed server's workspace is removed by the next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_testutil import ffmpeg_lavfi, png_bomb

from a2v.errors import InputError
from a2v.serve import jobs, limits
from a2v.serve.config import ServeConfig


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """The issue's inputs: PNGs of 12000^2 and 30000^2 pixels, 1 h of FLAC, a black 720p clip of 30 s."""
    root = tmp_path_factory.mktemp("bombs")
    return {
        "png_12000": png_bomb(root / "big.png", 12000, 12000),
        "png_30000": png_bomb(root / "huge.png", 30000, 30000, bits=1),
        "flac_1h": ffmpeg_lavfi(root / "hour.flac", "anullsrc=r=16000:cl=mono", 3600, "-c:a", "flac"),
        "black_720p": ffmpeg_lavfi(root / "black.mp4", "color=c=black:s=1280x720:r=25", 30,
                                   "-c:v", "libx264", "-preset", "ultrafast", "-crf", "51", "-pix_fmt", "yuv420p"),
    }


def _rss_mb() -> float:
    """Resident memory of this process, where the test server runs (a thread), in MB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_bomb_files_are_small(bombs):
    assert all(p.stat().st_size < 2_000_000 for p in bombs.values()), {k: p.stat().st_size for k, p in bombs.items()}


def test_bombs_are_refused_from_headers_with_flat_server_memory(server, inputs, bombs):
    url, _ = server
    face, speech = inputs
    cases = [
        ("face", "png_12000", "face: 12000x12000 pixels is over the 16777216 pixel limit"),
        ("face", "png_30000", "face: the image has far too many pixels"),
        ("face", "black_720p", "face: 750 frames of 1280x720 would take 2074 MB decoded, over the 1024 MB limit"),
        ("audio", "flac_1h", "audio: 3600 s of audio is over the 30 s limit"),
    ]
    before = _rss_mb()
    for field, name, msg in cases:
        files = {"face": face.read_bytes(), "audio": speech.read_bytes(), field: (bombs[name].name, bombs[name].read_bytes())}
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/api/v1/lipsync", files=files, timeout=120)
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"].startswith(msg), (name, r.text)
        assert time.perf_counter() - t0 < 20, name  # answered from the header, not after a decode
    grown = _rss_mb() - before
    assert grown < 200, f"server RSS grew {grown:.0f} MB"


def test_bombs_through_the_ui_are_refused_with_flat_memory(server, inputs, bombs):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = server
    face, speech = inputs
    client = Client(url, verbose=False)
    before = _rss_mb()
    for name, msg in (("png_30000", None), ("png_12000", "pixel limit")):  # 30000^2: refused by Gradio's own open
        with pytest.raises(AppError, match=msg):
            client.predict(handle_file(str(bombs[name])), None, handle_file(str(speech)), "", "default (no training)",
                           "envelope", 1.0, True, api_name="/lipsync")
    with pytest.raises(AppError, match="over the 30 s limit"):
        client.predict(handle_file(str(face)), None, handle_file(str(bombs["flac_1h"])), "",
                       "default (no training)", "envelope", 1.0, True, api_name="/lipsync")
    grown = _rss_mb() - before
    assert grown < 200, f"server RSS grew {grown:.0f} MB"


def test_header_probe_measures_without_decoding(bombs, inputs):
    face, speech = inputs
    cfg = ServeConfig(max_pixels=10**10, max_decoded_mb=10**6, max_audio_s=10**5, max_video_s=10**5)
    assert limits.probe_media(bombs["png_12000"], "face", cfg) == limits.Media("image", ".png", 12000, 12000)
    clip = limits.probe_media(bombs["black_720p"], "face", cfg)
    assert (clip.kind, clip.suffix, clip.width, clip.height, clip.frames) == ("video", ".mp4", 1280, 720, 750)
    hour = limits.probe_media(bombs["flac_1h"], "audio", cfg)
    assert (hour.kind, hour.suffix) == ("audio", ".flac") and hour.duration_s == pytest.approx(3600, abs=0.1)
    assert limits.probe_media(speech, "audio", cfg).suffix == ".wav"


def test_decoding_stops_at_the_limit_whatever_the_header_says(bombs, inputs):
    _, speech = inputs
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="audio: the audio is over the 30 s limit"):
        limits.check_decoded_audio_s(bombs["flac_1h"], "audio", 30.0)
    assert time.perf_counter() - t0 < 5  # stopped after ~30 s of the hour
    assert limits.check_decoded_audio_s(speech, "audio", 30.0) == pytest.approx(limits.probe_media(
        speech, "audio", ServeConfig()).duration_s, abs=0.05)


def _workspace_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_oversized_bodies_are_cut_off_and_failed_jobs_leave_nothing(server, inputs, tmp_path):
    url, app = server
    face, speech = inputs
    root = app.state.workspace.root
    before = set(root.rglob("*"))  # results of earlier UI jobs stay (until keep_results_s)
    # declared too large: refused before the body is read
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/lipsync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 120000000\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n\r\n" + b"x" * 1000)
        head = b""
        for _ in range(20):  # headers and body may come in separate packets
            head += sock.recv(4096)
            if b"}" in head:
                break
    assert head.startswith(b"HTTP/1.1 413") and b"limit" in head

    def chunks():  # no Content-Length: cut off while streaming (limit 2 x 5 MB + 1 MB)
        yield b'--x\r\nContent-Disposition: form-data; name="face"; filename="f.png"\r\n\r\n'
        for _ in range(120):
            yield b"y" * 1_000_000

    r = httpx.post(f"{url}/api/v1/lipsync", content=chunks(), timeout=60,
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and r.json() == {"error": "request body over the 11 MB limit"}
    # one file over the per-file limit (the body is within the total)
    r = httpx.post(f"{url}/api/v1/lipsync", files={"face": ("f.png", b"\0" * 6_000_000), "audio": speech.read_bytes()},
                   timeout=60)
    assert r.status_code == 413 and r.json() == {"error": "face: over the 5 MB upload limit"}
    # a job that fails after its uploads were stored
    r = httpx.post(f"{url}/api/v1/lipsync", files={"face": face.read_bytes(), "audio": ("a.wav", b"RIFF0000WAVEjunk")},
                   timeout=60)
    assert r.status_code == 400
    # the same through the UI
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AppError, match="audio: not a readable image, audio or video file"):
        Client(url, verbose=False).predict(handle_file(str(face)), None, handle_file(str(broken)), "",
                                           "default (no training)", "envelope", 1.0, True, api_name="/lipsync")
    time.sleep(0.5)
    left = [p for p in set(root.rglob("*")) - before if p.is_file()]
    assert left == [], left


def test_workspace_of_a_killed_server_is_removed_at_start(tmp_path):
    base = tmp_path / "a2v-serve"
    code = ("import sys, time; from pathlib import Path; from a2v.serve.jobs import Workspace; "
            "ws = Workspace(3600, base=Path(sys.argv[1])); (ws.new_job() / 'upload.bin').write_bytes(b'x' * 1000); "
            "print(ws.root, flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(base)], stdout=subprocess.PIPE, text=True, env=env)
    killed_root = Path(proc.stdout.readline().strip())
    live = jobs.Workspace(3600, base=base)  # another server, alive: must survive the next start
    assert killed_root.is_dir() and _workspace_bytes(killed_root) >= 1000
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert killed_root.is_dir()  # SIGKILL: no cleanup ran
    ws = jobs.Workspace(3600, base=base)
    assert ws.stale_removed == 1 and not killed_root.exists()
    assert live.root.is_dir()
    ws.close()
    live.close()


def test_a_shared_scratch_folder_is_refused(tmp_path):
    from a2v.errors import A2VError

    open_base = tmp_path / "open"
    open_base.mkdir(mode=0o777)
    open_base.chmod(0o777)
    with pytest.raises(A2VError, match="open to others"):
        jobs.Workspace(3600, base=open_base)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    with pytest.raises(A2VError, match="is a link"):
        jobs.Workspace(3600, base=tmp_path / "link")


def test_probe_errors_name_the_field_only(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(InputError) as e:
        limits.probe_media(bad, "audio", ServeConfig())
    assert str(e.value) == "audio: not a readable image, audio or video file"
    assert limits.scrub("cannot read /tmp/a2v-serve/123/job/face.png: bad") == "cannot read face.png: bad"
    assert limits.scrub_report({"out": Path("/x/y/out.mp4"), "v": float("nan"), "n": [1, "/a/b"]}) == {
        "out": "out.mp4", "v": None, "n": [1, "b"]}


def test_malformed_files_give_one_line_errors(tmp_path, inputs):
    """Truncated and corrupted real files and random bytes behind real magic numbers: InputError only."""
    import numpy as np

    face, speech = inputs
    rng = np.random.default_rng(0)
    real = [face.read_bytes(), speech.read_bytes()]
    magics = [b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"fLaC", b"\x00\x00\x00\x18ftypmp42", b"\xff\xd8\xff",
              b"OggS", b"\x1aE\xdf\xa3", b"GIF89a", b"<svg", b"BM"]
    cases = [m + rng.bytes(int(rng.integers(0, 3000))) for m in magics]
    for data in real:
        cases += [data[: int(rng.integers(1, len(data)))] for _ in range(5)]  # truncated
        for _ in range(5):  # a few bytes flipped inside the header
            b = bytearray(data)
            for i in rng.integers(0, min(len(b), 200), 8):
                b[i] = int(rng.integers(0, 256))
            cases.append(bytes(b))
    ok = 0
    for i, data in enumerate(cases):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        try:
            limits.probe_media(p, "face", ServeConfig())
            ok += 1
        except InputError as e:
            assert "\n" not in str(e) and str(e).startswith("face: "), str(e)
    assert ok < len(cases)
