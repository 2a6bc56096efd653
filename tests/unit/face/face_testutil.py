"""Helpers for face tests: a scripted detector, index-stamped frames, GRID reading with PyAV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from a2v.face.detect import Detections


class ScriptedDetector:
    """Detector returning given boxes per frame (frames carry their index in pixel [0,0,0])."""

    def __init__(self, boxes_of_frame) -> None:
        self.boxes_of_frame = boxes_of_frame
        self.calls: list[int] = []

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for f in frames:
            i = int(f[0, 0, 0]) + 256 * int(f[0, 0, 1])
            self.calls.append(i)
            b = np.asarray(self.boxes_of_frame(i), np.float32).reshape(-1, 4)
            out.append(Detections.from_arrays(b, np.linspace(0.99, 0.9, len(b))))
        return out


def indexed_frames(n: int, hw: tuple[int, int] = (64, 80)) -> list[np.ndarray]:
    """n tiny frames whose pixel [0,0] encodes the frame index (for ScriptedDetector)."""
    frames = []
    for i in range(n):
        f = np.zeros((*hw, 3), np.uint8)
        f[0, 0, 0], f[0, 0, 1] = i % 256, i // 256
        frames.append(f)
    return frames


def read_grid(path: Path) -> tuple[np.ndarray, float, float]:
    """GRID clip -> (frames uint8 (F,H,W,3), fps, audio duration s), read with PyAV."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])  # (F,H,W,3)
    with av.open(str(path)) as c:
        n_samples, rate = 0, 0
        for fr in c.decode(audio=0):
            n_samples += fr.samples
            rate = fr.sample_rate
    return frames, fps, n_samples / rate
