"""Bounded first-in-first-out job queue; each job runs in a child process that is stopped on timeout
or cancellation (e.g. the client disconnected).

Why a child process: a thread cannot be stopped, and a job's memory goes back to the system when
its process ends. The children come from a ``forkserver`` that has the recipe code imported, so a
job starts in well under a second.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("a2v.serve")
PRELOAD = ["a2v.serve.jobs", "a2v.recipes.lipsync.driven.generate"]


class QueueFull(Exception):  # noqa: N818 - maps to HTTP 503
    """More jobs are waiting than the queue holds."""


@dataclass
class Job:
    """One queued call ``fn(*args, **kwargs)``; ``status`` ends as "done", "error", "timeout",
    "cancelled" or "crashed" (then ``error`` holds a one-line message, ``error_kind`` "input" for
    a user-fixable A2VError)."""

    fn: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]
    status: str = "queued"
    result: Any = None
    error: str = ""
    error_kind: str = ""
    started_s: float = 0.0  # time.monotonic() when it started / finished
    finished_s: float = 0.0
    progress: tuple[float, str] | None = None  # latest (fraction, description) of the job's progress bars
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancel_event.set()


def _forward_progress(conn: Any, lock: threading.Lock, every_s: float = 0.25) -> None:
    """Send ("progress", fraction, description) for the job's tqdm bars (at most every ``every_s``)."""
    from tqdm import std

    update = std.tqdm.update
    last = [0.0]

    def forwarding_update(self: Any, n: float = 1) -> Any:
        out = update(self, n)
        now = time.monotonic()
        if self.total and now - last[0] >= every_s:
            last[0] = now
            with lock:
                conn.send(("progress", min(float(self.n) / float(self.total), 1.0), str(self.desc or "")))
        return out

    std.tqdm.update = forwarding_update


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> None:
    """Child process body: send ("progress", ...) messages, then ("ok", result) or ("error", kind, one line)."""
    from a2v.errors import A2VError

    lock = threading.Lock()
    _forward_progress(conn, lock)
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except A2VError as e:
        conn.send(("error", "input", (str(e).splitlines() or [type(e).__name__])[0]))
    except BaseException as e:  # noqa: BLE001 - report any failure to the parent, which logs it
        import traceback

        traceback.print_exc()
        conn.send(("error", "internal", f"internal error ({type(e).__name__})"))
    finally:
        conn.close()


def _start_forkserver() -> None:
    from multiprocessing import forkserver

    try:
        forkserver.ensure_running()
    except (OSError, ValueError) as e:  # the first job starts it again and reports any failure
        log.warning("job process server did not start: %s", e)


class JobQueue:
    """``concurrency`` workers take jobs in arrival order; at most ``max_waiting`` wait.

    ``slots`` (shared with the web UI) bounds the jobs running at once across both front ends.
    """

    def __init__(self, slots: threading.BoundedSemaphore, concurrency: int, max_waiting: int, timeout_s: float,
                 poll_s: float = 0.1) -> None:
        self.slots, self.max_waiting, self.timeout_s, self.poll_s = slots, max_waiting, timeout_s, poll_s
        self.concurrency = concurrency
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        threading.Thread(target=_start_forkserver, daemon=True).start()  # the first job need not wait for it
        self._workers = [threading.Thread(target=self._work, name=f"a2v-job-{i}", daemon=True)
                         for i in range(concurrency)]
        for t in self._workers:
            t.start()

    def submit(self, fn: Callable[..., Any], *args: Any, bounded: bool = True, **kwargs: Any) -> Job:
        """Queue a job; raises QueueFull when ``max_waiting`` jobs already wait (``bounded=False``: a
        front end with its own bounded queue, the web UI)."""
        job = Job(fn, args, kwargs)
        with self._cond:
            if self._closed or (bounded and len(self._waiting) >= self.max_waiting):
                raise QueueFull(f"the server is busy ({len(self._waiting)} jobs waiting); try again later")
            self._waiting.append(job)
            self._cond.notify()
        return job

    def wait(self, job: Job, on_progress: Callable[[float, str], None] | None = None) -> Any:
        """Block until ``job`` ends; its result, or A2VError (user-fixable) / RuntimeError with its message."""
        from a2v.errors import A2VError

        seen = None
        while not job.done.wait(0.25):
            if on_progress is not None and job.progress is not None and job.progress != seen:
                seen = job.progress
                on_progress(*seen)
        if job.status == "done":
            return job.result
        if job.status == "error" and job.error_kind == "input" or job.status == "timeout":
            raise A2VError(job.error)
        raise RuntimeError(job.error)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"waiting": len(self._waiting), "running": self._running, "queue_size": self.max_waiting,
                    "concurrency": self.concurrency}

    def retry_after_s(self) -> int:
        """A rough wait estimate for clients refused with 503 (seconds)."""
        return 5 + 5 * len(self._waiting)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in self._waiting:
                job.cancel()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
            if job.cancel_event.is_set():
                self._finish(job, "cancelled", error="cancelled")
                continue
            try:
                with self.slots:
                    with self._cond:
                        self._running += 1
                    try:
                        self._run(job)
                    except Exception as e:  # noqa: BLE001 - a worker must survive any job
                        log.exception("job runner failed")
                        self._record(job, "crashed", error=f"internal error ({type(e).__name__})")
                    finally:
                        with self._cond:
                            self._running -= 1
            finally:
                job.done.set()  # only now: its process is gone and its slot free when the client hears

    def _run(self, job: Job) -> None:
        if job.cancel_event.is_set():
            self._record(job, "cancelled", error="cancelled")
            return
        job.started_s = time.monotonic()
        job.status = "running"
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(child, job.fn, job.args, job.kwargs), daemon=True)
        proc.start()
        child.close()
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                if parent.poll(self.poll_s):
                    try:
                        msg = parent.recv()
                    except EOFError:
                        msg = None
                    if msg is not None and msg[0] == "progress":
                        job.progress = (msg[1], msg[2])
                        continue
                    if msg is None:
                        self._record(job, "crashed", error="the job process ended without a result (out of memory?)")
                    elif msg[0] == "ok":
                        self._record(job, "done", result=msg[1])
                    else:
                        self._record(job, "error", error=msg[2], kind=msg[1])
                    return
                if job.cancel_event.is_set():
                    self._record(job, "cancelled", error="cancelled")
                    return
                if time.monotonic() > deadline:
                    self._record(job, "timeout", error=f"the job took longer than the {self.timeout_s:g} s limit")
                    return
                if not proc.is_alive() and not parent.poll():
                    self._record(job, "crashed", error="the job process ended without a result (out of memory?)")
                    return
        finally:
            parent.close()
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=10)

    @staticmethod
    def _record(job: Job, status: str, result: Any = None, error: str = "", kind: str = "") -> None:
        """Set the job's outcome without telling its waiter (the worker does, after cleaning up)."""
        job.status, job.result, job.error, job.error_kind = status, result, error, kind
        job.finished_s = time.monotonic()

    @classmethod
    def _finish(cls, job: Job, status: str, result: Any = None, error: str = "", kind: str = "") -> None:
        cls._record(job, status, result, error, kind)
        job.done.set()
