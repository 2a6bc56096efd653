"""Video input/output on PyAV: streaming read (upright RGB, constant-frame-rate resampling),
H.264 + AAC writing, audio muxing, GIF/PNG output, image loading.

Frames are uint8 (H,W,3) RGB in [0, 255]; stacks are uint8 (F,H,W,3); waveforms are
float32 (S,) mono in [-1, 1]. Long videos stream frame by frame and are never held in memory.
"""

from a2v.video.image import load_image, write_gif, write_png, write_png_sequence
from a2v.video.probe import VideoInfo, probe, require_audio
from a2v.video.reader import read_audio, read_frames, read_video
from a2v.video.writer import VideoWriter, mux_audio, write_video

__all__ = [
    "VideoInfo",
    "VideoWriter",
    "load_image",
    "mux_audio",
    "probe",
    "read_audio",
    "read_frames",
    "read_video",
    "require_audio",
    "write_gif",
    "write_png",
    "write_png_sequence",
    "write_video",
]
