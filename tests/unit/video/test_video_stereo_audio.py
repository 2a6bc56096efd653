"""VideoWriter keeps the audio's rate and channels: 48 kHz stereo in -> 48 kHz stereo AAC out."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.video import VideoWriter, probe


def test_stereo_48k_audio_keeps_rate_and_channels(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr
    wav = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)  # (2,S)
    out = tmp_path / "s.mp4"
    with VideoWriter(out, fps=25, audio=wav, audio_sr=sr) as w:
        for _ in range(25):
            w.write(np.zeros((32, 32, 3), np.uint8))
    info = probe(out)
    assert info.audio_sr == 48000 and info.audio_channels == 2


def test_more_than_two_channels_is_refused(tmp_path):
    with pytest.raises(ValueError, match="1 or 2 channels"):
        VideoWriter(tmp_path / "x.mp4", fps=25, audio=np.zeros((6, 100), np.float32), audio_sr=48000)
