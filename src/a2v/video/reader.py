"""Streaming video reading (PyAV): upright RGB frames, optional constant-frame-rate resampling.

Frames are decoded one at a time, so a long video is never held in memory; only
:func:`read_video` stacks frames, for short clips, behind a ``max_frames`` guard.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from a2v.errors import InputError
from a2v.video.probe import open_video, probe, rotation_steps, video_stream

log = logging.getLogger(__name__)


def read_frames(
    path: str | Path,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the frames of a video, upright, as uint8 (H,W,3) RGB arrays in [0, 255].

    Args:
        path: any video FFmpeg reads (mp4, mkv, mov, avi, mpg, webm...).
        fps: output frame rate in frames/s. ``None`` yields every decoded frame at the
            file's own timing. Given, frames are resampled to a constant rate by their
            timestamps (duplicated or dropped), which turns variable-frame-rate input into
            constant-frame-rate output of ``round(duration_s * fps)`` frames.
        size: output ``(H, W)`` in pixels (after rotation); ``None`` keeps the display size.
        progress: show a progress bar with ETA (tqdm).

    The rotation metadata (display matrix or ``rotate`` tag) is applied, so portrait
    phone videos come out portrait. Raises InputError for a bad file.
    """
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    p = Path(path)
    total = None
    if progress:
        info = probe(p)
        total = round(info.duration_s * fps) if fps else info.num_frames
    with _progress(total, p.name, progress) as bar:
        decoded = _decode(p, size)
        frames = _cfr(decoded, fps, p) if fps is not None else (rgb for _, _, rgb in decoded)
        for frame in frames:
            bar.update(1)
            yield frame


def read_video(
    path: str | Path,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    max_frames: int = 3000,
) -> tuple[np.ndarray, float]:
    """Read a short clip into memory: (frames uint8 (F,H,W,3) RGB, fps in frames/s).

    ``fps`` and ``size`` as in :func:`read_frames` (``fps=None`` returns the file's
    average rate). Raises InputError when the clip has more than ``max_frames`` frames:
    stream long videos with :func:`read_frames` instead.
    """
    p = Path(path)
    out_fps = float(fps) if fps is not None else probe(p).fps
    frames = []
    for frame in read_frames(p, fps=fps, size=size):
        if len(frames) >= max_frames:
            raise InputError(
                f"{p} has more than {max_frames} frames: stream it with read_frames() or raise max_frames"
            )
        frames.append(frame)
    return np.stack(frames), out_fps  # F x (H,W,3) -> (F,H,W,3)


def read_audio(path: str | Path, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio track of a video (or audio) file to mono.

    Returns (float32 (S,) about [-1, 1], sample rate in Hz); ``sr`` resamples (FFmpeg
    swresample; a full-scale signal may overshoot 1 slightly, it is not clipped), ``None``
    keeps the file's rate. Channels are averaged to mono.
    Raises InputError when there is no audio track.
    """
    p = Path(path)
    chunks: list[np.ndarray] = []
    with open_video(p, "media file") as container:
        if not container.streams.audio:
            raise InputError(f"{p} has no audio track (give a video with sound or a separate audio file)")
        stream = container.streams.audio[0]
        out_sr = int(sr or stream.rate)
        resampler = av.AudioResampler(format="fltp", rate=out_sr)  # keeps the channel layout
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().mean(0))  # (C,S) -> (S,)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().mean(0))  # (C,S) -> (S,)
    if not chunks:
        raise InputError(f"audio track of {p} has no decodable samples (corrupt or empty audio)")
    return np.concatenate(chunks).astype(np.float32, copy=False), out_sr


def _decode(path: Path, size: tuple[int, int] | None) -> Iterator[tuple[float, float | None, np.ndarray]]:
    """Yield (time_s, duration_s or None, uint8 (H,W,3) upright RGB) per decoded frame.

    A frame without a timestamp is placed at the stream's nominal rate after the previous one.
    """
    with open_video(path) as container:
        vs = video_stream(container, path)
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        step = 1.0 / float(rate) if rate else 0.04
        t = -step
        count = 0
        for frame in container.decode(vs):
            k = rotation_steps(frame.rotation or 0)
            if size is None:
                rgb = frame.to_ndarray(format="rgb24")  # (h,w,3)
            else:
                h_out, w_out = size if k % 2 == 0 else size[::-1]  # size before the quarter turn
                shrink = h_out <= frame.height and w_out <= frame.width
                rgb = frame.reformat(
                    width=w_out, height=h_out, format="rgb24", interpolation="AREA" if shrink else "BICUBIC"
                ).to_ndarray()  # (h,w,3) -> (h_out,w_out,3)
            if k:
                rgb = np.ascontiguousarray(np.rot90(rgb, k))  # (h,w,3) -> (w,h,3) for odd k
            dur = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else None
            t = frame.time if frame.time is not None else t + step
            count += 1
            yield t, dur, rgb
        if count == 0:
            raise InputError(f"no decodable video frame in {path} (empty or corrupt video)")
        if vs.frames and count < vs.frames:
            log.warning(
                "%s: decoded %d of the %d frames it lists (truncated or corrupt file)", path, count, vs.frames
            )


def _cfr(
    frames: Iterator[tuple[float, float | None, np.ndarray]], fps: float, path: Path
) -> Iterator[np.ndarray]:
    """Constant-frame-rate resampling by timestamps.

    Source frame i at time t_i goes to output slot n_i = round((t_i - t_0) * fps); output
    frame k is the last source frame with n_i <= k, and the output ends at the slot of the
    last frame's end time. This is the index rule of FFmpeg's ``fps`` filter (round=near),
    written here so the frames stream as arrays and the duplicate/drop counts are known.
    """
    t0 = None
    prev = None
    prev_out = 0  # times the current `prev` was emitted
    k = 0  # next output slot
    n_src = dup = drop = 0
    last_t = 0.0
    last_dur = None
    for t, dur, rgb in frames:
        n_src += 1
        if t0 is None:
            t0 = t
        n = math.floor((t - t0) * fps + 0.5)
        if prev is not None:
            while k < n:
                yield prev
                k += 1
                prev_out += 1
            drop += prev_out == 0  # superseded within one output slot
            dup += max(0, prev_out - 1)
        if dur is None and prev is not None and t > last_t:
            dur = t - last_t  # unknown frame duration: assume the previous interval
        prev, prev_out, last_t, last_dur = rgb, 0, t, dur
    if prev is None:
        return
    end = last_t + (last_dur if last_dur else 1.0 / fps)
    n_end = math.floor((end - t0) * fps + 0.5)
    if k == 0:
        n_end = max(n_end, 1)  # a one-frame (or very short) video still yields its frame
    while k < n_end:
        yield prev
        k += 1
        prev_out += 1
    drop += prev_out == 0
    dup += max(0, prev_out - 1)
    if dup or drop:
        log.info(
            "%s: resampled %d frames to %d at %g fps (%d duplicated, %d dropped)",
            path,
            n_src,
            k,
            fps,
            dup,
            drop,
        )


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _progress(total: int | None, name: str, enabled: bool):
    """A tqdm bar (context manager) when ``enabled``, else a no-op with the same interface."""
    if not enabled:
        return contextlib.nullcontext(_NoBar())
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"read {name}", unit="frame")
