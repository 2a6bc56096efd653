"""Validation of everything a request carries, shared by the web UI and the HTTP API.

Files are identified by their content (PIL / FFmpeg headers), never by the name the client sent,
and are measured from their headers before anything is decoded: pixels, duration and the memory a
decode would take are checked against :class:`ServeConfig` first. Every problem is an
:class:`a2v.errors.InputError` with one line that names the field, never a server path.
"""

from __future__ import annotations

import math
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2v.errors import InputError
from a2v.serve.config import AUDIO_EXTENSIONS, ServeConfig

MODES = ("auto", "phoneme", "envelope")
MOTION_SCALE_RANGE = (0.0, 2.0)  # the UI slider's range
MAX_TRANSCRIPT_CHARS = 2000
LANGUAGE_RE = re.compile(r"auto|other|[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")  # auto, other, or an ISO 639 code with subtags
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
# FFmpeg demuxer name -> the suffix the stored copy gets (a fixed, safe name per kind)
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": ".mp4", "matroska,webm": ".mkv", "avi": ".avi", "wav": ".wav",
              "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg", "mpeg": ".mpg"}
_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"`:,;()\[\]{}<>]+/)*([^\s'\"`:,;()\[\]{}<>/]*)")


@dataclass(frozen=True)
class Media:
    """What an upload is: kind "image" / "video" / "audio", the suffix its stored copy gets, and
    the header facts (pixels per frame, seconds, frames)."""

    kind: str
    suffix: str
    width: int = 0
    height: int = 0
    duration_s: float = 0.0
    frames: int = 0


def scrub(text: str) -> str:
    """``text`` with every absolute path reduced to its file name (errors never show server paths)."""
    return _ABS_PATH.sub(lambda m: m.group(1) or "<path>", text)


def scrub_report(value: Any) -> Any:
    """A JSON-ready report with paths reduced to file names, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): scrub_report(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_report(v) for v in value]
    if isinstance(value, Path):
        return value.name
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub(str(value))


def probe_media(path: Path, field: str, cfg: ServeConfig) -> Media:
    """Identify and measure ``path`` from its headers only (nothing is decoded).

    Raises InputError naming ``field`` for an unknown format or a limit exceeded.
    """
    if path.stat().st_size == 0:
        raise InputError(f"{field}: the upload is empty (0 bytes)")
    try:
        media = _probe_image(path, field) or _probe_av(path, field)
    except (AttributeError, TypeError, ZeroDivisionError, OverflowError, EOFError, IndexError, KeyError,
            struct.error, av_error()):  # odd headers
        raise InputError(f"{field}: not a readable image, audio or video file") from None
    if media.kind == "image":
        _check_pixels(field, media.width, media.height, 1, cfg)
    elif media.kind == "video":
        if media.duration_s > cfg.max_video_s:
            raise InputError(f"{field}: {media.duration_s:.0f} s of video is over the {cfg.max_video_s:g} s limit")
        _check_pixels(field, media.width, media.height, media.frames, cfg)
    elif media.duration_s > cfg.max_audio_s:
        raise InputError(f"{field}: {media.duration_s:.0f} s of audio is over the {cfg.max_audio_s:g} s limit")
    return media


def av_error() -> type[Exception]:
    import av

    return av.FFmpegError


def _check_pixels(field: str, w: int, h: int, frames: int, cfg: ServeConfig) -> None:
    if w * h > cfg.max_pixels:
        raise InputError(f"{field}: {w}x{h} pixels is over the {cfg.max_pixels} pixel limit; scale it down")
    mb = frames * w * h * 3 / 1e6
    if mb > cfg.max_decoded_mb:
        raise InputError(f"{field}: {frames} frames of {w}x{h} would take {mb:.0f} MB decoded, over the "
                         f"{cfg.max_decoded_mb:g} MB limit; send a shorter or smaller clip")


def _probe_image(path: Path, field: str) -> Media | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                fmt, (w, h) = im.format, im.size
    except Image.DecompressionBombError:
        raise InputError(f"{field}: the image has far too many pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"{field}: {fmt} images are not accepted (use PNG, JPEG, WebP or BMP)")
    return Media("image", IMAGE_FORMATS[fmt], int(w), int(h))


def _probe_av(path: Path, field: str) -> Media:
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        raise InputError(f"{field}: not a readable image, audio or video file") from None
    try:
        suffix = CONTAINERS.get(container.format.name, ".bin")
        duration = container.duration / av.time_base if container.duration is not None else None
        if container.streams.video:
            vs = container.streams.video[0]
            cc = vs.codec_context
            w, h = (int(cc.width or 0), int(cc.height or 0)) if cc is not None else (0, 0)
            rate = float(vs.average_rate or vs.guessed_rate or vs.base_rate or 0)
            if vs.duration is not None and vs.time_base is not None:
                duration = float(vs.duration * vs.time_base)
            if not w or not h or rate <= 0 or duration is None:
                raise InputError(f"{field}: the video header gives no size, frame rate or duration; re-encode it")
            frames = max(int(vs.frames or 0), math.ceil(duration * rate))
            return Media("video", suffix if suffix != ".bin" else ".mp4", w, h, duration, frames)
        if container.streams.audio:
            a = container.streams.audio[0]
            if a.duration is not None and a.time_base is not None:
                duration = max(duration or 0.0, float(a.duration * a.time_base))
            if duration is None:
                raise InputError(f"{field}: the audio header gives no duration; re-encode it (e.g. as WAV or FLAC)")
            suffix = ".webm" if suffix == ".mkv" else suffix
            if suffix not in AUDIO_EXTENSIONS:
                raise InputError(f"{field}: {container.format.name} audio is not accepted "
                                 "(use WAV, FLAC, MP3, OGG, M4A or WebM)")
            return Media("audio", suffix, duration_s=duration)
        raise InputError(f"{field}: no audio or video stream in the upload")
    finally:
        container.close()


def check_decoded_audio_s(path: Path, field: str, max_s: float, max_mb: float = math.inf) -> float:
    """Decode the first audio stream frame by frame, keeping nothing, and stop with InputError once it
    passes ``max_s`` seconds or ``max_mb`` MB of float32 samples (all channels, at the file's own rate:
    what a full decode holds): a file whose header understates its length, or a short file at a huge
    rate with many channels, is caught with flat memory. Returns the duration in seconds."""
    import av

    total = 0.0
    decoded_mb = 0.0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InputError(f"{field}: no audio stream in the upload")
            for frame in container.decode(container.streams.audio[0]):
                total += frame.samples / float(frame.sample_rate or 1)
                decoded_mb += frame.samples * max(1, len(frame.layout.channels)) * 4 / 1e6
                if total > max_s:
                    raise InputError(f"{field}: the audio is over the {max_s:g} s limit")
                if decoded_mb > max_mb:
                    raise InputError(f"{field}: the decoded audio is over the {max_mb:g} MB limit "
                                     "(sample rate x channels x length); send 48 kHz stereo or less")
    except av.FFmpegError:
        raise InputError(f"{field}: the audio is corrupt and cannot be decoded") from None
    return total


def require_kind(media: Media, field: str, kinds: tuple[str, ...]) -> None:
    if media.kind not in kinds:
        raise InputError(f"{field}: got {'an' if media.kind[0] in 'aeiou' else 'a'} {media.kind} file, "
                         f"expected {' or '.join(kinds)}")


# --- form fields --------------------------------------------------------------------------------
def parse_float(value: Any, field: str, lo: float, hi: float) -> float:
    """A finite float in [lo, hi] from a form value."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{field}: '{str(value)[:40]}' is not a number") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise InputError(f"{field}: {str(value)[:40]} is outside [{lo:g}, {hi:g}]")
    return x


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise InputError(f"{field}: '{s[:40]}' is not true or false")


def parse_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    s = str(value)
    if s not in choices:
        raise InputError(f"{field}: '{s[:40]}' is not one of {', '.join(choices)}")
    return s


def parse_language(value: Any) -> str:
    """A language the lipsync recipe takes ("en", "zh", "pt-BR" -> "pt", ...; see
    :data:`a2v.recipes.lipsync.driven.params.LANGUAGES`), normalised to its code."""
    from a2v.recipes.lipsync.driven.params import check_language

    s = str(value).strip()
    if not LANGUAGE_RE.fullmatch(s):
        raise InputError(f"language: '{s[:40]}' is not a language code such as en, de or pt-BR")
    try:
        return check_language(s)
    except InputError as e:
        raise InputError(f"language: {e}") from None


def parse_text(value: Any, field: str, max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    s = "" if value is None else str(value)
    if len(s) > max_chars:
        raise InputError(f"{field}: {len(s)} characters is over the {max_chars} character limit")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in s):
        raise InputError(f"{field}: control characters are not accepted")
    return s


def require_uploaded(path: str | Path | None, field: str, upload_dir: str | Path) -> Path | None:
    """``path`` when it is a file inside ``upload_dir`` (where the UI stores uploads), else InputError.

    Guards every UI file input: a client can name any path in a Gradio API call.
    """
    if path is None or str(path) == "":
        return None
    p = Path(path).resolve()
    root = Path(upload_dir).resolve()
    if not p.is_relative_to(root) or not p.is_file():
        raise InputError(f"{field}: not an uploaded file; upload it again")
    return p
