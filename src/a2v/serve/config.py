"""Server limits and trust settings. Defaults suit one CPU machine serving a few people; every
field is an ``a2v serve`` option and every limit is shown by ``GET /api/v1/health``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm", ".mp4")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm")


@dataclass(frozen=True)
class ServeConfig:
    """max_upload_mb: largest accepted upload (MB, per file; the request body may hold two).
    max_audio_s: longest accepted speech input (seconds, read from the file header before decoding).
    max_video_s: longest accepted face video (seconds, from the header).
    max_pixels: most pixels of one image or video frame (width * height, from the header).
    max_decoded_mb: most memory one decoded input may take (MB: frames * H * W * 3 for a video).
    concurrency: jobs run at the same time (UI queue and API together).
    queue_size: jobs waiting at most (per front end: UI and API); more are refused (HTTP 503).
    job_timeout_s: a job running longer is stopped (every job runs in a child process).
    keep_results_s: generated files older than this are deleted (seconds).
    device: "cpu", "cuda" or "auto" (CUDA when present).
    trust_pickles: let model folders load pickled generators (runs their code); only from
        the server's command line (``--trust-pickles``), never from a model folder.
    auth: "user:password" or a bearer token required on every request; "" = none.
    allowed_hosts: Host header values accepted (host names, no port); empty = loopback names
        plus the bind address.
    langid_model: a multilingual Whisper folder that identifies the speech's language for the
        lipsync "auto" mode; only from the server's command line (``--langid-model``), "" = none.
    """

    max_upload_mb: float = 100.0
    max_audio_s: float = 600.0
    max_video_s: float = 120.0
    max_pixels: int = 4096 * 4096
    max_decoded_mb: float = 1024.0
    concurrency: int = 1
    queue_size: int = 16
    job_timeout_s: float = 1800.0
    keep_results_s: int = 3600
    device: str = "auto"
    trust_pickles: bool = False
    auth: str = ""
    allowed_hosts: tuple[str, ...] = ()
    langid_model: str = ""

    def limits(self) -> dict[str, float | int]:
        """The limits as shown by health (no secrets)."""
        keep = ("max_upload_mb", "max_audio_s", "max_video_s", "max_pixels", "max_decoded_mb", "concurrency",
                "queue_size", "job_timeout_s", "keep_results_s")
        return {k: v for k, v in asdict(self).items() if k in keep}
