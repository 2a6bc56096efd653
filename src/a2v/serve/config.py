"""Server limits. Defaults suit one CPU machine serving a few people."""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm", ".mp4")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm")


@dataclass(frozen=True)
class ServeConfig:
    """max_upload_mb: largest accepted upload (MB, per file).
    max_audio_s: longest accepted speech input (seconds).
    concurrency: jobs run at the same time (UI queue and API together).
    queue_size: UI jobs waiting at most; more are refused with a message.
    keep_results_s: generated files older than this are deleted (seconds).
    device: "cpu", "cuda" or "auto" (CUDA when present).
    """

    max_upload_mb: float = 100.0
    max_audio_s: float = 600.0
    concurrency: int = 1
    queue_size: int = 16
    keep_results_s: int = 3600
    device: str = "auto"
