"""Input checks for ``generate`` and ``evaluate``: run before any model loads, one line on failure.

- output: a video container (.mp4/.mov/.m4v/.mkv) in an existing folder;
- speech: readable, complete (a WAV whose data chunk is shorter than its header declares is
  truncated), not silent; kept at its own sample rate and channels for the output's audio track
  (:class:`Speech`), with a 16 kHz mono copy for analysis;
- video: a decodable video (a photo given where a video is needed is named as such).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")  # containers the writer produces
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
ANALYSIS_SR = 16000  # Hz, rate of every audio analysis in the recipe


@dataclass(frozen=True)
class Speech:
    """Speech for one run: ``mono`` float32 (S,) at 16 kHz for analysis; ``native`` float32 (C,S')
    with C in {1, 2} at ``sr`` Hz (the file's own rate and channels) for the output."""

    mono: np.ndarray
    native: np.ndarray
    sr: int
    source: str

    @property
    def duration_s(self) -> float:
        return self.mono.size / ANALYSIS_SR


def check_output_video(path: str | Path) -> Path:
    """``path`` as a Path if it names a video file we can write; InputError otherwise."""
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        got = f"'{p.suffix}'" if p.suffix else "no extension"
        raise InputError(f"output {p} has {got}; give a video file ending in {', '.join(VIDEO_SUFFIXES)} (e.g. -o out.mp4)")
    if p.is_dir():
        raise InputError(f"output {p} is a directory; give a file name such as {p / 'out.mp4'}")
    if not p.parent.is_dir():
        raise InputError(f"output folder {p.parent} does not exist; create it first")
    return p


def wav_truncation(path: str | Path) -> tuple[int, int] | None:
    """(declared, present) bytes of a RIFF/WAVE file's data chunk when it is cut short, else None.

    Read by hand (a few header fields): soundfile and the stdlib ``wave`` read a truncated file
    without saying so. Files that are not RIFF/WAVE (or use the 0xFFFFFFFF "unknown size") -> None.
    """
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                present = size - pos - 8
                return (n, present) if n != 0xFFFFFFFF and present < n else None
            pos += 8 + n + (n & 1)  # chunks are word-aligned
    return None


def _native_rate(p: Path) -> int:
    """Sample rate of a file's first audio stream in Hz (0 if unknown)."""
    if p.suffix.lower() in (".wav", ".flac", ".ogg", ".oga"):
        import soundfile as sf

        try:
            return int(sf.info(str(p)).samplerate)
        except (sf.LibsndfileError, RuntimeError):
            pass
    import av

    try:
        with av.open(str(p)) as c:
            return int(c.streams.audio[0].rate) if c.streams.audio else 0
    except av.FFmpegError as e:
        raise InputError(f"cannot decode audio file {p}: unknown or corrupt format ({e}); "
                         "convert it to wav, flac, mp3, ogg or m4a") from e


def load_speech(path: str | Path, what: str = "audio file") -> Speech:
    """Read speech for a run; InputError (one line) for missing, truncated, empty or silent audio.

    More than two channels are averaged to mono for the output (the writer takes mono or stereo).
    """
    from a2v.audio import is_silent, load_audio, resample

    p = require_file(path, what)
    cut = wav_truncation(p) if p.suffix.lower() == ".wav" else None
    if cut is not None:
        raise InputError(f"{p} is truncated: its header declares {cut[0]} bytes of samples but the file holds "
                         f"{cut[1]}; re-export or re-download it")
    sr = _native_rate(p)
    if sr <= 0:
        raise InputError(f"{p} has no audio track; give a file with sound")
    native = load_audio(p, sr=sr, mono=False)  # (C,S) at the file's rate
    if native.shape[0] > 2:
        native = native.mean(0, keepdims=True)  # (C,S)->(1,S)
    mono = resample(native.mean(0), sr, ANALYSIS_SR)  # (S,)->(S16,)
    if is_silent(mono, sr=ANALYSIS_SR):
        raise InputError(f"{p} is silent (no 25 ms window above -60 dBFS): no speech to use; check the file")
    return Speech(np.clip(mono, -1, 1).astype(np.float32), native.astype(np.float32), sr, str(p))


def check_video_input(path: str | Path, what: str = "video") -> Path:
    """``path`` as a Path if it is a decodable video; a photo is named as not a video."""
    from a2v.video import probe

    p = require_file(path, what)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{what} {p} is an image, not a video; give a video file (e.g. .mp4)")
    info = probe(p)  # InputError for undecodable files
    if info.num_frames < 2 and info.codec in ("png", "mjpeg", "bmp", "tiff", "webp"):
        raise InputError(f"{what} {p} is an image, not a video; give a video file (e.g. .mp4)")
    return p
