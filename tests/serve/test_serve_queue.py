"""The job queue: first in first out, bounded (503 + Retry-After), per-job timeout, cancelled when the
client disconnects, inputs checked before queueing, health live and ready reflecting the queue; over
real HTTP where it matters."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest
from serve_testutil import running

from a2v.serve.config import ServeConfig
from a2v.serve.runner import JobQueue, QueueFull


@pytest.fixture()
def queue():
    q = JobQueue(threading.BoundedSemaphore(1), concurrency=1, max_waiting=3, timeout_s=2.0)
    yield q
    q.close()


def test_jobs_run_first_in_first_out_and_the_queue_is_bounded(queue):
    first = queue.submit(time.sleep, 0.5)
    while first.status == "queued":
        time.sleep(0.01)
    waiting = [queue.submit(time.sleep, 0.1) for _ in range(3)]
    with pytest.raises(QueueFull, match="busy"):
        queue.submit(time.sleep, 0.1)
    for job in (first, *waiting):
        assert job.done.wait(30) and job.status == "done"
    starts = [j.started_s for j in (first, *waiting)]
    assert starts == sorted(starts)
    assert all(a.finished_s <= b.started_s for a, b in zip((first, *waiting), waiting, strict=False))  # one by one


def test_a_job_over_the_timeout_is_stopped(queue):
    job = queue.submit(time.sleep, 30)
    assert job.done.wait(20)
    assert job.status == "timeout" and "2 s limit" in job.error
    assert job.finished_s - job.started_s < 6


def test_cancel_stops_running_and_waiting_jobs(queue):
    running_job = queue.submit(time.sleep, 30)
    waiting_job = queue.submit(time.sleep, 30)
    while running_job.status == "queued":
        time.sleep(0.01)
    waiting_job.cancel()
    running_job.cancel()
    assert running_job.done.wait(5) and waiting_job.done.wait(5)
    assert running_job.status == waiting_job.status == "cancelled"
    assert queue.stats() == {"waiting": 0, "running": 0, "queue_size": 3, "concurrency": 1}


def _counting(n: int) -> int:
    """A job with a progress bar (runs in the child process)."""
    from tqdm import tqdm

    for _ in tqdm(range(n), desc="counting", mininterval=0):
        time.sleep(0.05)
    return n


def test_progress_of_the_child_reaches_the_caller(queue):
    seen: list[tuple[float, str]] = []
    assert queue.wait(queue.submit(_counting, 30), lambda frac, desc: seen.append((frac, desc))) == 30
    assert len(seen) >= 2 and all(desc == "counting" and 0 < frac <= 1 for frac, desc in seen)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_errors_come_back_as_one_line(queue):
    job = queue.submit(int, "x")
    assert job.done.wait(20) and job.status == "error" and job.error == "internal error (ValueError)"


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory):
    """55 s of speech (eSpeak NG, repeated): a lip-sync job long enough to keep the worker busy past the
    clients' 8 s patience on an idle 2-core machine (20 s took 4-8 s there)."""
    from a2v.audio import save_audio, synthesize_speech

    wav = synthesize_speech("Hello there, how are you today? I am fine, thank you.")
    wav = np.tile(wav, int(np.ceil(55 * 16000 / len(wav))))[: 55 * 16000]
    return save_audio(tmp_path_factory.mktemp("long") / "long.wav", wav, 16000)


def _stats(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/health", timeout=5).json()["queue"]


def _wait_for(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_busy_server_refuses_fast_and_cancels_jobs_of_gone_clients(tmp_path, inputs, long_speech):
    from a2v.serve.app import build_app

    face, speech = inputs
    app = build_app(tmp_path, ServeConfig(concurrency=1, queue_size=1, job_timeout_s=120, max_audio_s=60))
    files = {"face": face.read_bytes(), "audio": long_speech.read_bytes()}
    results: dict[str, object] = {}

    def post(name: str, client_timeout: float) -> None:
        try:
            results[name] = httpx.post(f"{url}/api/v1/lipsync", files=files, timeout=client_timeout)
        except httpx.TimeoutException:
            results[name] = "gave up"

    try:
        with running(app) as url:
            a = threading.Thread(target=post, args=("a", 8.0))
            a.start()
            assert _wait_for(lambda: _stats(url)["running"] == 1, 20)
            b = threading.Thread(target=post, args=("b", 8.0))
            b.start()
            assert _wait_for(lambda: _stats(url)["waiting"] == 1, 20)
            # full: refused at once with Retry-After; health answers at once; ready says not ready
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/api/v1/lipsync", files=files, timeout=30)
            assert r.status_code == 503 and "busy" in r.json()["error"] and int(r.headers["retry-after"]) > 0
            t_health = time.perf_counter()
            assert httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
            assert time.perf_counter() - t_health < 1.0
            r = httpx.get(f"{url}/api/v1/ready", timeout=5)
            assert r.status_code == 503 and r.json()["queue"]["waiting"] == 1 and "retry-after" in r.headers
            # a bad input is answered before the queue, not after the worker
            r = httpx.post(f"{url}/api/v1/lipsync", files={"face": face.read_bytes(), "audio": speech.read_bytes()},
                           data={"motion_scale": "nan"}, timeout=30)
            assert r.status_code == 400
            assert time.perf_counter() - t0 < 5
            # both clients give up: their jobs are stopped, not run to the end
            a.join(30)
            b.join(30)
            assert results == {"a": "gave up", "b": "gave up"}
            assert _wait_for(lambda: _stats(url) == {"waiting": 0, "running": 0, "queue_size": 1, "concurrency": 1}, 5)
            assert httpx.get(f"{url}/api/v1/ready", timeout=5).status_code == 200
            root = app.state.workspace.root
            assert _wait_for(lambda: [p for p in root.iterdir() if p.name not in (".lock", "examples")] == [], 5)
    finally:
        app.state.workspace.close()


def test_job_timeout_over_http(tmp_path, inputs, long_speech):
    from a2v.serve.app import build_app

    face, _ = inputs
    app = build_app(tmp_path, ServeConfig(job_timeout_s=2, max_audio_s=60))
    try:
        with running(app) as url:
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/api/v1/lipsync", files={"face": face.read_bytes(), "audio": long_speech.read_bytes()},
                           timeout=60)
            assert r.status_code == 504 and r.json() == {"error": "the job took longer than the 2 s limit"}
            assert time.perf_counter() - t0 < 15
            assert _stats(url)["running"] == 0
            # UI jobs run in the same queue, under the same limit
            from gradio_client import Client, handle_file
            from gradio_client.exceptions import AppError

            with pytest.raises(AppError, match="took longer than the 2 s limit"):
                Client(url, verbose=False).predict(handle_file(str(face)), None, handle_file(str(long_speech)), "",
                                                   "default (no training)", "envelope", 1.0, True, api_name="/lipsync")
    finally:
        app.state.workspace.close()
