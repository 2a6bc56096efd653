"""What the UI and the API run: upload checks, a scratch workspace, and the recipe calls.

Every user-fixable problem is an :class:`a2v.errors.InputError` with one line of text; the UI
shows it as a message and the API returns it as ``{"error": ...}`` with status 400.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from a2v.device import resolve_device
from a2v.errors import A2VError, InputError
from a2v.serve.config import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ServeConfig

AUDIO_SR = 16000
INPUT_FIELDS = ("face", "audio", "photo")  # stored uploads are <field><suffix> (see stage_input)


def default_base() -> Path:
    """Parent of every server's workspace: ``<tmp>/a2v-serve`` (one sub-folder per running server)."""
    return Path(tempfile.gettempdir()) / "a2v-serve"


def clean_stale(base: Path, min_age_s: float = 60.0) -> int:
    """Remove workspaces in ``base`` whose server is gone (killed without cleanup); returns how many.

    A live server holds an exclusive lock on ``<workspace>/.lock``; a folder whose lock can be taken,
    or one without a lock file older than ``min_age_s``, belongs to nobody.
    """
    import fcntl

    n = 0
    for d in base.iterdir() if base.is_dir() else ():
        if not d.is_dir() or d.is_symlink() or d.name == "gradio":
            continue
        lock = d / ".lock"
        if lock.is_file():
            with lock.open("a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running server's
        elif time.time() - d.stat().st_mtime < min_age_s:
            continue  # being created right now
        shutil.rmtree(d, ignore_errors=True)
        n += 1
    return n


class Workspace:
    """A private temporary folder with one sub-folder per job; old jobs are deleted.

    Uploads are stored there under fixed names, results written there; a failed job's folder is
    removed at once (:meth:`discard`), :meth:`close` removes everything, and a server killed
    without cleanup leaves a folder the next server start removes (:func:`clean_stale`).
    """

    def __init__(self, keep_s: int, concurrency: int = 1, base: Path | None = None) -> None:
        import fcntl

        base = Path(base) if base is not None else default_base()
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = base.lstat()
        if base.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise A2VError(f"scratch folder {base} is a link, another user's, or open to others: remove it "
                           "or set TMPDIR to a private folder")
        self.stale_removed = clean_stale(base)
        self.root = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        self._lock_file = (self.root / ".lock").open("w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this server lives
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(concurrency)  # UI and API jobs together

    def new_job(self) -> Path:
        self.sweep()
        path = self.root / f"{time.time():.0f}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def drop_inputs(self, job: Path) -> None:
        """Remove a finished job's stored uploads (its results stay until the sweep)."""
        for p in job.iterdir() if job.is_dir() else ():
            if p.is_file() and p.stem in INPUT_FIELDS:
                p.unlink(missing_ok=True)

    def discard(self, job: Path) -> None:
        """Remove a job's folder now (failed or cancelled job)."""
        if job.parent == self.root:
            shutil.rmtree(job, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete job folders older than ``keep_s``; returns how many."""
        now = time.time() if now is None else now
        n = 0
        with self._lock:
            for job in self.root.iterdir():
                if job.is_dir() and now - job.stat().st_mtime > self.keep_s:
                    shutil.rmtree(job, ignore_errors=True)
                    n += 1
        return n

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._lock_file.close()


def stage_input(src: Path, job: Path, field: str, kinds: tuple[str, ...], cfg: ServeConfig) -> Path:
    """Measure an upload from its headers (:func:`a2v.serve.limits.probe_media`) and move it into the
    job folder as ``<field><suffix>``: a fixed name chosen from the content, never the client's name."""
    from a2v.serve.limits import probe_media, require_kind

    media = probe_media(src, field, cfg)
    require_kind(media, field, kinds)
    dest = job / f"{field}{media.suffix}"
    shutil.copyfile(src, dest)
    return dest


def check_upload(path: str | Path | None, kind: str, cfg: ServeConfig) -> Path:
    """Check an uploaded file: present, an accepted type (``kind`` = audio / image / face) and
    not larger than ``cfg.max_upload_mb``. ``face`` accepts a photo or a video."""
    if path is None or str(path) == "":
        raise InputError(f"no {kind} file given: upload one")
    path = Path(path)
    allowed = {
        "audio": AUDIO_EXTENSIONS,
        "image": IMAGE_EXTENSIONS,
        "face": IMAGE_EXTENSIONS + VIDEO_EXTENSIONS,
        "video": VIDEO_EXTENSIONS,
    }[kind]
    if path.suffix.lower() not in allowed:
        raise InputError(f"{path.name}: not an accepted {kind} type (use one of {' '.join(allowed)})")
    if not path.is_file():
        raise InputError(f"{path.name}: upload missing on the server, upload it again")
    size_mb = path.stat().st_size / 1e6
    if size_mb > cfg.max_upload_mb:
        raise InputError(f"{path.name}: {size_mb:.0f} MB is over the {cfg.max_upload_mb:.0f} MB upload limit")
    return path


def load_speech(path: Path, cfg: ServeConfig) -> tuple[Any, int]:
    """Speech as float32 (S,) at 16 kHz, refused when longer than ``cfg.max_audio_s``."""
    from a2v.audio import load_audio
    from a2v.serve.limits import check_decoded_audio_s

    check_decoded_audio_s(path, path.name, cfg.max_audio_s, cfg.max_decoded_mb)  # flat memory, whatever the header says
    wav = load_audio(path, sr=AUDIO_SR)  # (S,) float32 in [-1, 1]
    if len(wav) > cfg.max_audio_s * AUDIO_SR:
        raise InputError(f"{path.name}: {len(wav) / AUDIO_SR:.0f} s of audio is over the {cfg.max_audio_s:.0f} s limit")
    return wav, AUDIO_SR


def load_native_speech(path: Path, cfg: ServeConfig) -> Any:
    """Speech for the lipsync recipe (:class:`a2v.recipes.lipsync.inputs.Speech`: 16 kHz mono for
    analysis, the file's own rate and channels for the output), refused when longer than
    ``cfg.max_audio_s`` before it is decoded whole."""
    from a2v.recipes.lipsync.inputs import load_speech as load_lipsync_speech
    from a2v.serve.limits import check_decoded_audio_s

    check_decoded_audio_s(path, path.name, cfg.max_audio_s, cfg.max_decoded_mb)  # flat memory, whatever the header says
    return load_lipsync_speech(path, what=path.name)


def list_models(models_dir: Path | None, recipe: str) -> list[str]:
    """Names of the trained pipelines in ``models_dir/<recipe>/`` (folders holding a JSON config)."""
    if models_dir is None or not (models_dir / recipe).is_dir():
        return []
    return sorted(p.name for p in (models_dir / recipe).iterdir() if p.is_dir() and any(p.glob("*.json")))


def model_path(models_dir: Path | None, recipe: str, name: str) -> Path:
    if models_dir is None or name not in list_models(models_dir, recipe):
        raise InputError(f"no {recipe} model named '{str(name)[:60]}' on this server (GET /api/v1/health lists them)")
    return models_dir / recipe / name


DEFAULT_MODEL = "default (no training)"


def run_lipsync(
    face: str | Path | None,
    audio: str | Path | None,
    out_dir: Path,
    cfg: ServeConfig,
    *,
    models_dir: Path | None = None,
    model: str = DEFAULT_MODEL,
    transcript: str | None = None,
    mode: str = "auto",
    motion_scale: float = 1.0,
    blink: bool = True,
    language: str = "auto",
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Talking face from a photo or clip and speech; returns (mp4 path, report).

    The default model is the no-training path (phoneme timing + audio envelope + face warp); a
    trained lip-sync pipeline from ``models_dir/lipsync/<model>/`` renders its person instead,
    using the uploaded clip (if any) as the template.
    """
    audio_path = check_upload(audio, "audio", cfg)
    default = model in ("", None, DEFAULT_MODEL)
    face_path = check_upload(face, "face", cfg) if default else None  # before the (slow) audio decode
    speech = load_native_speech(audio_path, cfg)  # output keeps the upload's rate and channels
    out = out_dir / "talking_face.mp4"
    device = resolve_device(cfg.device)
    if default:
        from a2v.recipes.lipsync.driven.generate import generate_driven

        report = generate_driven(
            face_path, speech, out, transcript=(transcript or None), mode=mode, motion_scale=motion_scale,
            blink=blink, device=device, progress=progress, language=language,
            langid_model=cfg.langid_model or None,
        )
        return out, report
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline

    pipe = LipSyncPipeline.from_pretrained(model_path(models_dir, "lipsync", model), device=device)
    template = check_upload(face, "video", cfg) if face else None
    report = pipe.generate(speech.mono, out, template=template, progress=progress,
                           mux_audio=(speech.native, speech.sr))
    return out, report


def pipeline_dir(models_dir: Path | None, recipe: str, model: str | None) -> Path:
    if not model:
        found = list_models(models_dir, recipe)
        if not found:
            raise InputError(f"no trained {recipe} model on this server: train one with `a2v {recipe} train`")
        model = found[0]
    return model_path(models_dir, recipe, model)


def talk_trust_overrides(pipe_dir: Path, trust: bool) -> list[str]:
    """Config overrides that put pickle trust in the server's hands: a model folder's own
    ``generator.trust_pickle`` / ``invert.trust_encoder`` are replaced by ``trust`` (``--trust-pickles``)."""
    import json

    from a2v.recipes.talk.pipeline import CONFIG_FILE

    value = "true" if trust else "false"
    overrides = [f"invert.trust_encoder={value}"]
    try:
        info = json.loads((pipe_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return overrides  # from_pretrained reports the missing or broken file
    if not isinstance(info, dict) or info.get("generator") != "generator":  # not the saved built-in one
        overrides.append(f"generator.trust_pickle={value}")
    return overrides


def run_talk(photo: str | Path | None, audio: str | Path | None, out_dir: Path, cfg: ServeConfig, *,
             models_dir: Path | None, model: str | None = None, motion_scale: float | None = None,
             progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Talking-face video from one photo and speech (talk recipe); returns (mp4, report)."""
    photo_path = check_upload(photo, "image", cfg)
    wav, _ = load_speech(check_upload(audio, "audio", cfg), cfg)
    from a2v.recipes.talk.pipeline import TalkPipeline

    pipe_dir = pipeline_dir(models_dir, "talk", model)
    pipe = TalkPipeline.from_pretrained(pipe_dir, device=resolve_device(cfg.device),
                                        overrides=talk_trust_overrides(pipe_dir, cfg.trust_pickles))
    out = out_dir / "talk.mp4"
    res = pipe.generate(photo_path, wav, out, motion_scale=motion_scale, progress=progress)
    return out, {"frames": int(res.frames.shape[0]), "fps": res.fps}


def run_tongue(audio: str | Path | None, out_dir: Path, cfg: ServeConfig, *, models_dir: Path | None,
               model: str | None = None, text: str | None = None, seed: int = 0,
               progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Ultrasound tongue video from speech (+ transcript) (tongue recipe); returns (mp4, report)."""
    wav, _ = load_speech(check_upload(audio, "audio", cfg), cfg)
    from a2v.recipes.tongue.pipeline import TonguePipeline

    pipe = TonguePipeline.from_pretrained(pipeline_dir(models_dir, "tongue", model), device=resolve_device(cfg.device))
    video = pipe.generate(wav, text=(text or None), seed=seed, progress=progress)  # (F,S,S) uint8
    out = pipe.write(out_dir / "tongue.mp4", video, wav)
    return Path(out), {"frames": int(video.shape[0]), "size_px": int(video.shape[1])}


def run_face(audio: str | Path | None, out_dir: Path, cfg: ServeConfig, *, models_dir: Path | None,
             model: str | None = None, num: int = 4, guidance_w: float | None = None, sampler: str | None = None,
             num_steps: int | None = None, seed: int = 0, progress: bool = False) -> tuple[list[Path], dict[str, Any]]:
    """Face photos for a voice (face recipe); returns (PNG paths, report)."""
    wav, _ = load_speech(check_upload(audio, "audio", cfg), cfg)
    from a2v.recipes.face.pipeline import FacePipeline
    from a2v.video import write_png

    pipe = FacePipeline.from_pretrained(pipeline_dir(models_dir, "face", model), device=resolve_device(cfg.device))
    faces = pipe.generate(wav, num=num, guidance_w=guidance_w, sampler=sampler, num_steps=num_steps, seed=seed,
                          progress=progress)  # (N,H,W,3) uint8
    paths = [write_png(out_dir / f"face_{i}.png", f) for i, f in enumerate(faces)]
    return paths, {"faces": len(paths), "size_px": int(faces.shape[1])}


def run_image(audio: str | Path | None, out_dir: Path, cfg: ServeConfig, *, models_dir: Path | None,
              model: str | None = None, steps: int | None = None, seed: int | None = None,
              progress: bool = False) -> tuple[Path, Path, dict[str, Any]]:
    """A picture for a sound (image recipe); returns (PNG, mp4 of the optimisation, report)."""
    wav, _ = load_speech(check_upload(audio, "audio", cfg), cfg)
    from a2v.recipes.image.pipeline import ImagePipeline
    from a2v.video import write_png

    pipe = ImagePipeline.from_pretrained(pipeline_dir(models_dir, "image", model), device=resolve_device(cfg.device))
    video = out_dir / "optimisation.mp4"
    img = pipe.generate(wav, steps=steps, video=video, seed=seed, progress=progress)  # (H,W,3) uint8
    return write_png(out_dir / "image.png", img), video, {"size_px": int(img.shape[0])}
