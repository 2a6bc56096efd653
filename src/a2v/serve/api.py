"""HTTP API (FastAPI): ``GET /api/v1/health`` (live), ``GET /api/v1/ready`` (queue), ``POST /api/v1/lipsync``.

    curl -F face=@photo.jpg -F audio=@speech.wav http://127.0.0.1:7860/api/v1/lipsync -o out.mp4

Every input is checked before the job is queued (fields, file types from content, pixels and
seconds from headers); the job then waits in a bounded first-in-first-out queue and runs in a child
process that is stopped on timeout or when the client disconnects. Errors are ``{"error": "<one
line>"}``: 400 bad input, 401 no credentials, 403 cross-origin, 413 too large, 503 busy (with
Retry-After), 504 job timeout, 500 server fault (details only in the server log).
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations at run time
import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from a2v.errors import InputError
from a2v.serve import jobs, limits
from a2v.serve.config import ServeConfig
from a2v.serve.runner import JobQueue, QueueFull
from a2v.serve.security import BodyTooLarge

log = logging.getLogger("a2v.serve")
CHUNK = 1 << 20
RECIPES = ("lipsync", "tongue", "face", "image", "talk")
LIPSYNC_FIELDS = {"audio", "face", "transcript", "mode", "motion_scale", "blink", "model", "language"}


LIPSYNC_OPENAPI = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["audio"], "properties": {
        "audio": {"type": "string", "format": "binary", "description": "speech (wav/flac/mp3/ogg/m4a/webm)"},
        "face": {"type": "string", "format": "binary", "description": "face photo or video"},
        "transcript": {"type": "string", "maxLength": 2000},
        "mode": {"type": "string", "enum": ["auto", "phoneme", "envelope"], "default": "auto"},
        "motion_scale": {"type": "number", "minimum": 0, "maximum": 2, "default": 1.0},
        "blink": {"type": "boolean", "default": True},
        "model": {"type": "string", "default": "default (no training)"},
        "language": {"type": "string", "default": "auto",
                     "description": "auto (check whether English phones fit), en, zh, es, de, pt-BR, ..."},
    }}}}}}


class TooLarge(Exception):  # noqa: N818 - maps to HTTP 413
    pass


def _copy_limited(upload: Any, dest: Path, field: str, cfg: ServeConfig) -> Path:
    """Copy an UploadFile to ``dest`` with the per-file size limit applied on the way."""
    limit, n = cfg.max_upload_mb * 1e6, 0
    upload.file.seek(0)
    with dest.open("wb") as f:
        while chunk := upload.file.read(CHUNK):
            n += len(chunk)
            if n > limit:
                raise TooLarge(f"{field}: over the {cfg.max_upload_mb:g} MB upload limit")
            f.write(chunk)
    return dest


def _stage(upload: Any, job: Path, field: str, kinds: tuple[str, ...], cfg: ServeConfig) -> Path:
    raw = _copy_limited(upload, job / f"{field}.upload", field, cfg)
    try:
        return jobs.stage_input(raw, job, field, kinds, cfg)
    finally:
        raw.unlink(missing_ok=True)


def _lipsync_request(form: Any, job: Path, cfg: ServeConfig, models_dir: Path | None) -> dict[str, Any]:
    """Checked arguments of :func:`jobs.run_lipsync` from the form; uploads staged in ``job``."""
    from starlette.datastructures import UploadFile

    unknown = sorted(set(form.keys()) - LIPSYNC_FIELDS)
    if unknown:
        raise InputError(f"unknown field '{unknown[0][:40]}' (fields: {', '.join(sorted(LIPSYNC_FIELDS))})")

    def text(name: str, default: str) -> str:
        v = form.get(name, default)
        if isinstance(v, UploadFile):
            raise InputError(f"{name}: expected a text field, got a file")
        return v

    def upload(name: str) -> Any:
        v = form.get(name)
        if v is not None and not isinstance(v, UploadFile):
            raise InputError(f"{name}: expected a file upload")
        return v if v is not None and v.filename is not None else None

    mode = limits.parse_choice(text("mode", "auto"), "mode", limits.MODES)
    motion = limits.parse_float(text("motion_scale", "1.0"), "motion_scale", *limits.MOTION_SCALE_RANGE)
    blink = limits.parse_bool(text("blink", "true"), "blink")
    transcript = limits.parse_text(text("transcript", ""), "transcript")
    language = limits.parse_language(text("language", "auto"))
    model = text("model", jobs.DEFAULT_MODEL)
    default = model in ("", jobs.DEFAULT_MODEL)
    if not default:
        jobs.model_path(models_dir, "lipsync", model)  # an unknown name fails here, before queueing
    audio, face = upload("audio"), upload("face")
    if audio is None:
        raise InputError("no audio file given: upload one")
    if face is None and default:
        raise InputError("no face file given: upload one")
    face_path = _stage(face, job, "face", ("image", "video") if default else ("video",), cfg) if face else None
    audio_path = _stage(audio, job, "audio", ("audio",), cfg)
    return {"face": face_path, "audio": audio_path, "model": model, "transcript": transcript, "mode": mode,
            "motion_scale": motion, "blink": blink, "language": language}


def add_routes(app: Any, ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> None:
    """Register the API routes and the JSON error shape on a FastAPI app."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.background import BackgroundTask
    from starlette.exceptions import HTTPException

    import a2v

    def fail(status: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": limits.scrub(msg)}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return fail(exc.status_code, exc.detail if isinstance(exc.detail, str) else "bad request")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return fail(400, f"bad request: {where} {first.get('msg', '')}".strip()[:200])

    @app.get("/api/v1/health")
    async def health() -> dict[str, Any]:
        """Liveness: answers at once, whatever the queue holds."""
        return {
            "status": "ok",
            "version": a2v.__version__,
            "models": {r: jobs.list_models(models_dir, r) for r in RECIPES},
            "limits": cfg.limits(),
            "queue": queue.stats(),
            "auth": bool(cfg.auth),
            "language_id": bool(cfg.langid_model),
        }

    @app.get("/api/v1/ready", response_model=None)
    async def ready() -> Any:
        """Readiness: 200 while the queue takes jobs, 503 (with Retry-After) when it is full."""
        stats = queue.stats()
        if stats["waiting"] >= stats["queue_size"]:
            return JSONResponse({"error": "queue full", "queue": stats}, status_code=503,
                                headers={"Retry-After": str(queue.retry_after_s())})
        return {"status": "ready", "queue": stats}

    @app.post("/api/v1/lipsync", response_model=None, openapi_extra=LIPSYNC_OPENAPI)
    async def lipsync(request: Request) -> Any:
        """Talking-face mp4 from a face photo/video and speech (the report is in header X-A2V-Report).

        Multipart fields: audio (file), face (file), transcript, mode (auto|phoneme|envelope),
        motion_scale (0-2), blink (true|false), model, language (auto, en, zh, de, ...).
        """
        from starlette.concurrency import run_in_threadpool
        from starlette.formparsers import MultiPartException

        job_dir = ws.new_job()
        try:
            try:
                form = await request.form(max_files=2, max_fields=8, max_part_size=64 * 1024)
            except MultiPartException as e:
                raise InputError(f"bad multipart body: {e.message}") from None
            except HTTPException as e:  # Starlette's wrapper of the parser's error
                raise InputError(f"bad multipart body: {e.detail}") from None
            try:
                kwargs = await run_in_threadpool(_lipsync_request, form, job_dir, cfg, models_dir)
            finally:
                await form.close()
            job = queue.submit(jobs.run_lipsync, kwargs.pop("face"), kwargs.pop("audio"), job_dir, cfg,
                               models_dir=models_dir, progress=False, **kwargs)
        except TooLarge as e:
            ws.discard(job_dir)
            return fail(413, str(e))
        except BodyTooLarge:
            ws.discard(job_dir)
            return fail(413, f"request body over the {2 * cfg.max_upload_mb + 1:g} MB limit")
        except InputError as e:
            ws.discard(job_dir)
            return fail(400, str(e).splitlines()[0])
        except QueueFull as e:
            ws.discard(job_dir)
            return fail(503, str(e), headers={"Retry-After": str(queue.retry_after_s())})
        except Exception as e:  # noqa: BLE001 - answer with a message, keep the traceback in the log
            ws.discard(job_dir)
            log.exception("lipsync request failed")
            return fail(500, f"internal error ({type(e).__name__})")
        while not job.done.is_set():
            if await request.is_disconnected():
                job.cancel()
                await run_in_threadpool(job.done.wait, 30)
                ws.discard(job_dir)
                log.info("lipsync job cancelled: client disconnected")
                return fail(499, "client disconnected")
            await asyncio.sleep(0.2)
        if job.status != "done":
            ws.discard(job_dir)
            status = {"error": 400 if job.error_kind == "input" else 500, "timeout": 504}.get(job.status, 500)
            return fail(status, job.error)
        out, report = job.result
        header = json.dumps(limits.scrub_report(report), separators=(",", ":"))
        return FileResponse(out, media_type="video/mp4", filename="talking_face.mp4",
                            headers={"X-A2V-Report": header}, background=BackgroundTask(shutil.rmtree, job_dir, True))

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    async def not_found(rest: str) -> JSONResponse:
        return fail(404, "no such API route (see /docs)")
