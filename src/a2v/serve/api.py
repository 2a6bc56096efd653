"""HTTP API (FastAPI): ``GET /api/v1/health``, ``POST /api/v1/lipsync``.

    curl -F face=@photo.jpg -F audio=@speech.wav http://127.0.0.1:7860/api/v1/lipsync -o out.mp4

Errors come back as ``{"error": "<one line>"}`` with status 400 (bad input), 413 (too large) or
500 (server fault, details only in the server log).
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations at run time
import json
import logging
import re
from pathlib import Path
from typing import Any

from a2v.errors import A2VError
from a2v.serve import jobs
from a2v.serve.config import ServeConfig

log = logging.getLogger("a2v.serve")
CHUNK = 1 << 20


class TooLarge(Exception):  # noqa: N818 - maps to HTTP 413
    pass


def _save_upload(upload: Any, dest_dir: Path, stem: str, cfg: ServeConfig) -> Path | None:
    """Stream an UploadFile to ``dest_dir/<stem><suffix>`` with the size limit applied on the way."""
    if upload is None or not upload.filename:
        return None
    suffix = Path(upload.filename).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        suffix = ""
    dest = dest_dir / f"{stem}{suffix}"
    limit, n = cfg.max_upload_mb * 1e6, 0
    with dest.open("wb") as f:
        while chunk := upload.file.read(CHUNK):
            n += len(chunk)
            if n > limit:
                raise TooLarge(f"{upload.filename}: over the {cfg.max_upload_mb:.0f} MB upload limit")
            f.write(chunk)
    return dest


def add_routes(app: Any, ws: jobs.Workspace, cfg: ServeConfig, models_dir: Path | None) -> None:
    """Register the API routes on a FastAPI app."""
    from fastapi import File, Form, UploadFile
    from fastapi.responses import FileResponse, JSONResponse

    import a2v

    def fail(status: int, msg: str) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=status)

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        recipes = ("lipsync", "tongue", "face", "image", "talk")
        return {
            "status": "ok",
            "version": a2v.__version__,
            "models": {r: jobs.list_models(models_dir, r) for r in recipes},
            "limits": {"max_upload_mb": cfg.max_upload_mb, "max_audio_s": cfg.max_audio_s},
        }

    @app.post("/api/v1/lipsync", response_model=None)
    def lipsync(
        audio: UploadFile = File(..., description="speech (wav/flac/mp3/ogg/m4a)"),  # noqa: B008
        face: UploadFile | None = File(None, description="face photo or video"),  # noqa: B008
        transcript: str = Form(""),
        mode: str = Form("auto"),
        motion_scale: float = Form(1.0),
        blink: bool = Form(True),
        model: str = Form(jobs.DEFAULT_MODEL),
    ) -> Any:
        """Talking-face mp4 from a face photo/video and speech (the report is in header X-A2V-Report)."""
        job = ws.new_job()
        try:
            face_path = _save_upload(face, job, "face", cfg)
            audio_path = _save_upload(audio, job, "audio", cfg)
            if mode not in ("auto", "phoneme", "envelope"):
                return fail(400, f"mode '{mode}' is not one of auto, phoneme, envelope")
            with ws.slots:
                out, report = jobs.run_lipsync(
                    face_path, audio_path, job, cfg, models_dir=models_dir, model=model, transcript=transcript,
                    mode=mode, motion_scale=motion_scale, blink=blink, progress=False,
                )
        except TooLarge as e:
            return fail(413, str(e))
        except A2VError as e:
            return fail(400, str(e).splitlines()[0])
        except Exception as e:  # noqa: BLE001 - answer with a message, keep the traceback in the log
            log.exception("lipsync job failed")
            return fail(500, f"internal error ({type(e).__name__})")
        header = json.dumps(report, default=str, separators=(",", ":"))
        return FileResponse(out, media_type="video/mp4", filename="talking_face.mp4", headers={"X-A2V-Report": header})
