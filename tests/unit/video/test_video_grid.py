"""Real data: a GRID clip (MPEG-1 video in MPEG-PS, MP2 audio), when ../shared/data/grid is present."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.video import probe, read_audio, read_frames, require_audio

pytestmark = pytest.mark.grid


def test_read_grid_clip(grid_clips):
    clip = grid_clips[0]
    info = require_audio(probe(clip), clip)
    assert (info.width, info.height) == (360, 288)
    assert info.fps == pytest.approx(25.0)
    assert info.has_audio and info.audio_sr == 44100
    assert info.num_frames == 75
    count = 0
    for frame in read_frames(clip):
        assert frame.shape == (288, 360, 3) and frame.dtype == np.uint8
        count += 1
    assert count == 75
    assert sum(1 for _ in read_frames(clip, fps=25)) == 75
    assert sum(1 for _ in read_frames(clip, fps=50)) == 150
    wav, sr = read_audio(clip, sr=16000)
    assert sr == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) / sr - 3.0) < 0.1
    assert (
        0.001 < np.abs(wav).max() < 1.05
    )  # this clip peaks at full scale; resampling may overshoot a little
