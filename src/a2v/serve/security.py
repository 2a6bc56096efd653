"""One ASGI middleware in front of the UI and the API: Host check, optional authentication, no
cross-origin writes, a streamed request-body limit, and the UI's file route restricted to media files
in Gradio's upload/cache folder (served as attachments that browsers never render as pages).

Every refusal is ``{"error": "<one line>"}`` with the matching status.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("a2v.serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# what the UI's /file= route may serve: media the UI shows (uploads and results), nothing a browser runs
SERVABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".mp4", ".webm", ".wav", ".mp3", ".flac",
                     ".ogg", ".m4a")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"SAMEORIGIN")]
MAX_JSON_BYTES = 1_000_000  # a UI call's JSON body (texts and file references, never file contents)
FILE_HEADERS = [(b"content-disposition", b"attachment"), (b"content-security-policy", b"sandbox; default-src 'none'")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):  # noqa: N818 - maps to HTTP 413
    pass


def host_name(host: str) -> str:
    """``"[::1]:7860"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_host_names(bind_host: str, extra: tuple[str, ...]) -> set[str]:
    """Host names accepted in the Host header: loopback names, the bind address, and ``extra``."""
    names = {*LOOPBACK, *(host_name(h) for h in extra)}
    if bind_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard bind needs --allowed-host
        names.add(host_name(bind_host))
    return names


def check_credentials(header: str, auth: str) -> bool:
    """``Authorization`` value against ``auth`` ("user:pass" for Basic, or a token for Bearer)."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), auth.encode())
    if scheme.lower() == "basic" and ":" in auth:
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, auth.encode())
    return False


class Guard:
    """ASGI middleware; ``upload_dir`` is Gradio's upload/cache folder (the only one /file= serves)."""

    def __init__(self, app: Any, *, hosts: set[str], auth: str, max_body_bytes: int, upload_dir: str | Path) -> None:
        self.app, self.hosts, self.auth, self.max_body = app, hosts, auth, max_body_bytes
        self.upload_dir = Path(upload_dir).resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refuse(scope, headers)
        if refusal is not None:
            status, msg, extra = refusal
            await _error(send, status, msg, extra) if scope["type"] == "http" else await _close_ws(send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        is_file = "/file=" in scope.get("path", "")
        started = False
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return msg

        async def send_with_headers(msg: dict[str, Any]) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in msg.get("headers", []) if not (is_file and k.lower() == b"content-disposition")]
                msg = {**msg, "headers": [*kept, *HEADERS, *(FILE_HEADERS if is_file else [])]}
            await send(msg)

        app_receive = limited_receive
        if _is_gradio_call(scope, headers):
            try:
                messages, body = await _read_body(limited_receive, MAX_JSON_BYTES)
            except BodyTooLarge:
                await _error(send, 413, f"request body over the {MAX_JSON_BYTES // 1000} kB limit for a call")
                return
            problem = self._file_inputs_problem(body)
            if problem:
                await _error(send, 400, problem)
                return
            app_receive = _replay(messages, receive)
        try:
            await self.app(scope, app_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await _error(send, 413, f"request body over the {self.max_body / 1e6:.0f} MB limit")

    def _refuse(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, list] | None:
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 400, f"host '{host[:60]}' is not served here (start the server with --allowed-host)", []
        if self.auth and not check_credentials(headers.get("authorization", ""), self.auth):
            return 401, "authentication required", [(b"www-authenticate", b'Basic realm="a2v", charset="UTF-8"')]
        method = scope.get("method", "GET")
        if method not in SAFE_METHODS or scope["type"] == "websocket":
            origin = headers.get("origin")
            if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
                return 403, "cross-origin requests are refused", []
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "cross-origin requests are refused", []
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > self.max_body):
            return 413, f"request body over the {self.max_body / 1e6:.0f} MB limit", []
        path = scope.get("path", "")
        if "/file=" in path and not self._servable(path.split("/file=", 1)[1]):
            return 404, "not found", []
        if "/proxy=" in path or re.search(r"(^|/)file/", path):  # Gradio's URL proxy and old file route: unused
            return 404, "not found", []
        return None

    def _file_inputs_problem(self, body: bytes) -> str | None:
        """Why a UI call's JSON may not run, or None: every file object in it (a dict with a
        ``path``) must name a file inside the upload folder, i.e. one a user uploaded."""
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return "the body is not JSON"
        stack = [data]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if "path" in x or "url" in x:
                    path = x.get("path")
                    if not isinstance(path, str) or not self._in_upload_dir(path):
                        return "file inputs must be files uploaded to this server; upload the file first"
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
        return None

    def _in_upload_dir(self, raw: str) -> bool:
        p = Path(raw)
        if not p.is_absolute():
            return False
        try:
            return p.resolve().is_relative_to(self.upload_dir)
        except (OSError, ValueError):
            return False

    def _servable(self, raw: str) -> bool:
        p = Path(unquote(raw))
        if not p.is_absolute() or p.suffix.lower() not in SERVABLE_SUFFIXES:
            return False
        try:
            return p.resolve().is_relative_to(self.upload_dir) and p.resolve().is_file()
        except OSError:
            return False


def _is_gradio_call(scope: Scope, headers: dict[str, str]) -> bool:
    """A POST to Gradio's API with a JSON body (queue/join, call/..., run/...): inputs to check."""
    return (scope.get("method") == "POST" and "/gradio_api/" in scope.get("path", "")
            and not scope["path"].rstrip("/").endswith(("/upload", "/process_recording")))


async def _read_body(receive: Receive, limit: int) -> tuple[list[dict[str, Any]], bytes]:
    messages, body = [], b""
    while True:
        msg = await receive()
        messages.append(msg)
        if msg["type"] != "http.request":
            return messages, body
        body += msg.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        if not msg.get("more_body", False):
            return messages, body


def _replay(messages: list[dict[str, Any]], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replay


async def _error(send: Send, status: int, msg: str, extra: list | None = None) -> None:
    body = json.dumps({"error": msg}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS,
        *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _close_ws(send: Send) -> None:
    await send({"type": "websocket.close", "code": 1008})
