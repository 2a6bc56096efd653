"""Open and describe a video file (PyAV): size, frame rate, frame count, audio, rotation.

Every bad input (missing, empty, corrupt, not a video, no video stream, no decodable
frame) becomes one :class:`~a2v.errors.InputError` line that names the file.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from a2v.errors import InputError, require_file


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found in a video file.

    ``width``/``height`` are the *display* size in pixels, i.e. after the rotation
    metadata is applied (what :func:`a2v.video.read_frames` yields); ``rotation_deg``
    is the counter-clockwise rotation (0, 90, 180 or 270) that was stored in the file.
    ``fps`` is the stream's average rate (frames/s). ``num_frames`` is exact when the
    container stores it and estimated as ``ceil(duration_s * fps)`` otherwise
    (``num_frames_exact`` tells which). ``audio_sr`` is the first audio stream's sample
    rate in Hz (``None`` without audio).
    """

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    num_frames_exact: bool
    duration_s: float
    has_audio: bool
    audio_sr: int | None
    audio_channels: int
    rotation_deg: int
    codec: str


@contextlib.contextmanager
def open_video(path: str | Path, what: str = "video") -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading with PyAV; FFmpeg errors become one-line InputErrors.

    Errors raised while the caller reads the container (corrupt packets) are turned
    into InputError as well. The container is closed on exit.
    """
    p = require_file(path, what)
    try:
        container = av.open(str(p), mode="r")
    except av.FFmpegError as e:
        raise InputError(f"cannot read {what} {p}: {_reason(e)} (is it a video file?)") from None
    try:
        yield container
    except av.FFmpegError as e:
        raise InputError(f"corrupt {what} {p}: {_reason(e)}") from None
    finally:
        container.close()


def video_stream(container: av.container.InputContainer, path: str | Path) -> av.video.stream.VideoStream:
    """The first video stream of ``container``; InputError when it has none."""
    if not container.streams.video:
        raise InputError(f"no video stream in {path} (is it an audio-only or image file?)")
    return container.streams.video[0]


def rotation_steps(rotation_deg: float) -> int:
    """Number of counter-clockwise quarter turns (0..3) for ``np.rot90`` from a display rotation."""
    return int(round(rotation_deg / 90.0)) % 4


def probe(path: str | Path) -> VideoInfo:
    """Describe the video at ``path`` without decoding more than its first frame.

    The first frame is decoded to read the rotation (display matrix / ``rotate`` tag)
    and to check that the video is decodable at all.
    """
    p = Path(path)
    with open_video(p) as container:
        vs = video_stream(container, p)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not rate or float(rate) <= 0:
            raise InputError(f"no frame rate in {p} (the container stores no timing; re-encode it)")
        fps = float(rate)
        tag = _duration_tag(vs.metadata.get("DURATION"))  # Matroska keeps it as a tag
        if vs.duration is not None and vs.time_base is not None:
            duration_s = float(vs.duration * vs.time_base)
        elif tag is not None:
            duration_s = tag
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        else:
            duration_s = 0.0
        first = next(container.decode(vs), None)
        if first is None:
            raise InputError(f"no decodable video frame in {p} (empty or corrupt video)")
        rotation = rotation_steps(first.rotation or 0) * 90
        exact = bool(vs.frames and vs.frames > 0)
        if exact:
            num_frames = int(vs.frames)
        else:
            num_frames = max(1, math.ceil(duration_s * fps - 1e-3))
        if duration_s <= 0:
            duration_s = num_frames / fps
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            path=str(p),
            width=int(w),
            height=int(h),
            fps=fps,
            num_frames=num_frames,
            num_frames_exact=exact,
            duration_s=duration_s,
            has_audio=audio is not None,
            audio_sr=int(audio.rate) if audio is not None else None,
            audio_channels=int(audio.channels) if audio is not None else 0,
            rotation_deg=rotation,
            codec=vs.codec_context.name,
        )


def require_audio(info: VideoInfo, path: str | Path | None = None) -> VideoInfo:
    """Return ``info`` when the video has an audio track; raise InputError otherwise."""
    if not info.has_audio:
        raise InputError(
            f"{path or info.path} has no audio track (give a video with sound or a separate audio file)"
        )
    return info


def _reason(e: av.FFmpegError) -> str:
    """The short FFmpeg reason of ``e`` ('Invalid data found when processing input')."""
    return str(getattr(e, "strerror", None) or e).strip().rstrip(".")


def _duration_tag(value: str | None) -> float | None:
    """'HH:MM:SS.fffffffff' (Matroska DURATION tag) -> seconds; None when absent or malformed."""
    if not value:
        return None
    try:
        h, m, sec = value.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None
