"""UltraSuite / TaL ultrasound files: ``.ult`` frames, ``.param`` geometry, audio sync, fan (scan) conversion.

Format (Eshky et al. 2018, UltraSuite; Ribeiro et al. 2021, TaL corpus):

- ``.ult``: headerless raw bytes, uint8 (BitsPerPixel = 8), frame after frame; a frame is
  ``NumVectors`` scanlines of ``PixPerVector`` echo samples (scanline-major), i.e. an array
  ``(F, NumVectors, PixPerVector)``.
- ``.param`` (UltraSuite ``US.param`` / TaL ``.param``): ``Key=Value`` lines: NumVectors,
  PixPerVector, ZeroOffset (echo samples between the probe centre and the first sample),
  BitsPerPixel, Angle (radians between adjacent scanlines), Kind, PixelsPerMm (echo samples
  per mm of depth), FramesPerSec, TimeInSecsOfFirstFrame (sync offset to the audio).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file
from a2v.io import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["UltParams", "read_param", "write_param", "read_ult", "write_ult", "SyncResult", "synchronize",
           "FanConverter", "raw_view", "resize_frames", "resample_frames"]


@dataclass(frozen=True)
class UltParams:
    """Probe geometry and timing of one ``.ult`` recording (see module docstring for units)."""

    NumVectors: int
    PixPerVector: int
    ZeroOffset: int = 0
    BitsPerPixel: int = 8
    Angle: float = 0.0
    Kind: int = 0
    PixelsPerMm: float = 1.0
    FramesPerSec: float = 0.0
    TimeInSecsOfFirstFrame: float = 0.0

    @property
    def frame_bytes(self) -> int:
        return self.NumVectors * self.PixPerVector * self.BitsPerPixel // 8


_INT_KEYS = {"NumVectors", "PixPerVector", "ZeroOffset", "BitsPerPixel", "Kind"}
_REQUIRED = ("NumVectors", "PixPerVector", "FramesPerSec")


def read_param(path: str | Path) -> UltParams:
    """Parse a ``Key=Value`` ``.param`` file; unknown keys are ignored, missing required ones raise InputError."""
    p = require_file(path, "ultrasound .param file")
    known = {f.name for f in fields(UltParams)}
    values: dict[str, float | int] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise InputError(f"{p}:{n}: expected Key=Value, got {line!r}")
        key, val = (s.strip() for s in line.split("=", 1))
        if key not in known:
            continue
        try:
            values[key] = int(float(val)) if key in _INT_KEYS else float(val)
        except ValueError:
            raise InputError(f"{p}:{n}: {key} must be a number, got {val!r}") from None
    missing = [k for k in _REQUIRED if k not in values]
    if missing:
        raise InputError(f"{p}: missing {', '.join(missing)} (needed to read the .ult frames)")
    prm = UltParams(**values)  # type: ignore[arg-type]
    if prm.BitsPerPixel != 8:
        raise InputError(f"{p}: BitsPerPixel={prm.BitsPerPixel}; only 8-bit ultrasound is supported")
    if prm.NumVectors < 1 or prm.PixPerVector < 1 or prm.FramesPerSec <= 0:
        raise InputError(f"{p}: NumVectors, PixPerVector and FramesPerSec must be positive")
    return prm


def write_param(path: str | Path, prm: UltParams) -> None:
    """Write ``prm`` as a ``Key=Value`` ``.param`` file (atomically)."""
    lines = [f"{f.name}={getattr(prm, f.name)}" for f in fields(UltParams)]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_ult(path: str | Path, prm: UltParams) -> np.ndarray:
    """Frames of a ``.ult`` file: uint8 (F, NumVectors, PixPerVector), F = bytes // frame size.

    A trailing partial frame (an interrupted recording) is left out and logged with its size.
    """
    p = require_file(path, "ultrasound .ult file")
    data = np.fromfile(p, dtype=np.uint8)
    n, rest = divmod(data.size, prm.frame_bytes)
    if n == 0:
        raise InputError(f"{p}: {data.size} bytes, less than one {prm.NumVectors}x{prm.PixPerVector} frame")
    if rest:
        log.warning("%s: %d trailing bytes (a partial frame) left out", p, rest)
    return data[: n * prm.frame_bytes].reshape(n, prm.NumVectors, prm.PixPerVector)  # (F,N,P)


def write_ult(path: str | Path, frames: np.ndarray, prm: UltParams) -> None:
    """Write uint8 (F, NumVectors, PixPerVector) frames as ``path`` (.ult) and ``path.with_suffix('.param')``."""
    f = np.asarray(frames)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[1:] != (prm.NumVectors, prm.PixPerVector):
        raise InputError(f"frames must be uint8 (F,{prm.NumVectors},{prm.PixPerVector}), got {f.dtype} {f.shape}")
    with atomic_path(path) as tmp:
        np.ascontiguousarray(f).tofile(tmp)
    write_param(Path(path).with_suffix(".param"), prm)


@dataclass(frozen=True)
class SyncResult:
    """Synchronised audio float32 (S,) and frames (F,...), with what was cut (samples / frames)."""

    wav: np.ndarray
    frames: np.ndarray
    audio_cut_start: int
    frames_cut_start: int
    audio_cut_end: int
    frames_cut_end: int


def synchronize(wav: np.ndarray, sr: int, frames: np.ndarray, fps: float, offset_s: float) -> SyncResult:
    """Align audio and ultrasound by their start offset, then truncate both to the shorter.

    ``offset_s`` > 0 (the first frame is ``offset_s`` into the audio, UltraSuite
    TimeInSecsOfFirstFrame): drop ``round(offset_s * sr)`` audio samples; ``offset_s`` < 0: drop
    ``round(-offset_s * fps)`` frames. Then F = min(frames, floor(S / sr * fps)) and
    S = round(F / fps * sr). wav float32 (S,) at ``sr`` Hz; frames (F,...) at ``fps``.
    """
    a0 = max(0, round(offset_s * sr))
    f0 = max(0, round(-offset_s * fps))
    w, fr = wav[a0:], frames[f0:]  # (S,)->(S-a0,), (F,...)->(F-f0,...)
    n = min(len(fr), int(np.floor(len(w) / sr * fps + 1e-9)))
    if n <= 0:
        raise InputError(f"audio ({len(wav) / sr:.2f} s) and ultrasound ({len(frames) / fps:.2f} s) do not overlap "
                         f"after the {offset_s:+.3f} s sync offset")
    s = min(len(w), round(n / fps * sr))
    return SyncResult(w[:s], fr[:n], a0, f0, len(w) - s, len(fr) - n)  # (S,), (F,...)


class FanConverter:
    """Scan conversion of raw scanlines to the fan-shaped Cartesian image (probe at the top centre).

    Scanline i points at ``theta_i = (i - (N-1)/2) * Angle`` rad from the vertical; echo sample
    j lies at ``r_j = (ZeroOffset + j) / PixelsPerMm`` mm from the probe centre. The output
    (``height_px`` rows, width from the fan's aspect ratio) covers the fan's bounding box;
    pixels outside the fan are 0. Interpolation by OpenCV ``remap`` (bilinear).
    """

    def __init__(self, prm: UltParams, height_px: int = 256) -> None:
        n, p = prm.NumVectors, prm.PixPerVector
        half = (n - 1) / 2 * prm.Angle  # rad
        r0, r1 = prm.ZeroOffset / prm.PixelsPerMm, (prm.ZeroOffset + p - 1) / prm.PixelsPerMm  # mm
        x_max = r1 * np.sin(half) if half > 0 else r1 * 1e-3
        y_min, y_max = r0 * np.cos(half), r1
        scale = (height_px - 1) / max(y_max - y_min, 1e-9)  # px per mm
        self.height_px = height_px
        self.width_px = max(1, int(round(2 * x_max * scale)) + 1)
        ys = y_min + np.arange(height_px) / scale  # (H,) mm below the probe centre
        xs = (np.arange(self.width_px) - (self.width_px - 1) / 2) / scale  # (W,) mm
        X, Y = np.meshgrid(xs, ys)  # (H,W)
        r = np.hypot(X, Y)  # (H,W) mm
        theta = np.arctan2(X, Y)  # (H,W) rad
        vec = theta / prm.Angle + (n - 1) / 2 if prm.Angle > 0 else np.full_like(theta, (n - 1) / 2)
        self.map_vec = vec.astype(np.float32)  # (H,W) scanline index
        self.map_pix = (r * prm.PixelsPerMm - prm.ZeroOffset).astype(np.float32)  # (H,W) echo sample index

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (F, NumVectors, PixPerVector) -> uint8 (F, height_px, width_px)."""
        import cv2

        out = np.empty((len(frames), self.height_px, self.width_px), np.uint8)
        for k, f in enumerate(frames):
            # remap reads src[map_y, map_x]: rows = scanlines, columns = echo samples
            out[k] = cv2.remap(f, self.map_pix, self.map_vec, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)
        return out


def raw_view(frames: np.ndarray) -> np.ndarray:
    """Raw-scanline image: uint8 (F, NumVectors, PixPerVector) -> (F, PixPerVector, NumVectors), depth downwards."""
    return np.ascontiguousarray(frames.transpose(0, 2, 1))  # (F,N,P)->(F,P,N)


def resize_frames(frames: np.ndarray, size_px: int) -> np.ndarray:
    """uint8 (F,H,W) -> uint8 (F,size,size) by area averaging (OpenCV INTER_AREA; bilinear when enlarging)."""
    import cv2

    if frames.shape[1:] == (size_px, size_px):
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] >= size_px else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size_px, size_px), interpolation=interp) for f in frames])  # (F,s,s)


def resample_frames(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Nearest-in-time frames at ``fps_out``: (F,...) -> (round(F / fps_in * fps_out),...)."""
    if abs(fps_in - fps_out) < 1e-6:
        return frames
    n = max(1, round(len(frames) / fps_in * fps_out))
    idx = np.minimum(np.floor((np.arange(n) + 0.5) / fps_out * fps_in).astype(np.int64), len(frames) - 1)  # (n,)
    return frames[idx]  # (F,...)->(n,...)
