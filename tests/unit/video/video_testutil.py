"""Synthetic frames and videos for the a2v.video tests (written with PyAV into tmp folders)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def smooth_frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """uint8 (H,W,3): slow gradients that move with i (easy for H.264, easy to compare)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(2 * np.pi * (xx / w + i / 25))
    g = 128 + 100 * np.cos(2 * np.pi * (yy / h))
    b = np.full_like(xx, 40 + 8 * i)
    return np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)  # (H,W,3)


def solid_frame(level: int, h: int = 32, w: int = 32) -> np.ndarray:
    """uint8 (H,W,3) of one gray level: identifies a source frame after lossy coding."""
    return np.full((h, w, 3), level, np.uint8)


def write_pts_video(
    path: Path,
    frames: list[np.ndarray],
    pts_ms: list[int],
    last_ms: int,
    codec: str = "libx264",
    rotation: int | None = None,
) -> None:
    """Write frames at the given presentation times (ms); the last frame lasts ``last_ms``."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=1000 if codec == "libx264" else 25)
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        if codec == "libx264":
            s.options = {"crf": "10", "bf": "0"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for f, t in zip(frames, pts_ms, strict=True):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            vf.duration = last_ms
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
