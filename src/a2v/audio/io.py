"""Audio input/output: decode any audio or video file to float32 samples, resample, save.

wav/flac/ogg are read with soundfile (libsndfile, sample-exact); everything else (mp3, m4a,
the audio track of videos) is decoded with PyAV (FFmpeg). Both paths decode at the native
rate, average channels for mono and resample with :func:`resample` (polyphase), so a clip
gives the same samples whatever container it came in.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file
from a2v.io import atomic_path

_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga"}
_WRITE_SUBTYPES = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with a polyphase filter (scipy.signal.resample_poly).

    wav: float (..., S) at ``sr_in`` Hz -> float32 (..., S') at ``sr_out`` Hz with
    ``S' = ceil(S * sr_out / sr_in)``. Returns a float32 copy when the rates are equal.
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    wav = np.asarray(wav, dtype=np.float32)
    if sr_in == sr_out:
        return wav.copy()
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    return resample_poly(wav, up, down, axis=-1).astype(np.float32)  # (...,S)->(...,S')


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (S,C)
    return np.ascontiguousarray(data.T), int(sr)  # (S,C)->(C,S)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise InputError(f"cannot decode audio file {path}: unknown or corrupt format ({e}); "
                         "convert it to wav, flac, mp3, ogg or m4a") from e
    with container:
        if not container.streams.audio:
            raise InputError(f"{path} has no audio track; give a file with sound")
        stream = container.streams.audio[0]
        resampler = None
        chunks: list[np.ndarray] = []
        sr = stream.rate
        try:
            for frame in container.decode(stream):
                if resampler is None:  # planar float at the first frame's layout and rate throughout
                    sr = frame.sample_rate
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sr)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())  # (C,s)
            for out in resampler.resample(None) if resampler is not None else []:  # flush
                chunks.append(out.to_ndarray())  # (C,s)
        except av.FFmpegError as e:
            raise InputError(f"cannot decode the audio of {path}: corrupt data ({e}); "
                             "re-encode the file (e.g. ffmpeg -i in out.wav)") from e
        # MP4/M4A edit lists give the exact length; the decoder leaves the AAC end padding.
        # (Read while the container is open: its streams are freed when it closes.)
        declared_s = None
        if "mp4" in container.format.name and stream.duration and stream.time_base:
            declared_s = float(stream.duration * stream.time_base)
    if not chunks:
        return np.zeros((1, 0), np.float32), int(sr or 0)
    data = np.concatenate(chunks, axis=1).astype(np.float32)  # (C,S)
    if declared_s is not None:
        n_keep = max(1, int(round(declared_s * sr)))
        data = data[:, :n_keep]  # (C,S)->(C,min(S,n_keep)) drop the encoder's end padding
    return data, int(sr)


def load_audio(path: str | Path, sr: int = 16000, mono: bool = True) -> np.ndarray:
    """Decode an audio file or a video's first audio track.

    Formats: wav, flac, ogg (soundfile); mp3, m4a and any container FFmpeg reads, videos
    included (PyAV). Channels are averaged for ``mono``; the signal is resampled to ``sr`` Hz
    with :func:`resample` and clipped to [-1, 1].

    Returns float32 (S,) in [-1, 1] at ``sr`` Hz when ``mono``, else float32 (C,S).
    Silent audio is returned as is (see :func:`is_silent`).

    Raises InputError (one line naming the file) when the file is missing, empty, corrupt,
    in an unknown format, has no audio track or decodes to zero samples.
    """
    p = require_file(path, "audio file")
    data: np.ndarray | None = None
    sr_in = 0
    if p.suffix.lower() in _SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            data, sr_in = _read_soundfile(p)
        except (sf.LibsndfileError, RuntimeError):
            data = None  # e.g. a wav with a codec libsndfile lacks: FFmpeg below tries it
    if data is None:
        data, sr_in = _read_pyav(p)
    if data.shape[-1] == 0 or sr_in <= 0:
        raise InputError(f"{p} contains no audio samples (0-length audio); give a non-empty recording")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{p} decodes to NaN/Inf samples (corrupt file); re-encode it")
    if mono:
        data = data.mean(axis=0)  # (C,S)->(S,)
    out = resample(data, sr_in, sr)  # (...,S)->(...,S')
    return np.clip(out, -1.0, 1.0)


def is_silent(wav: np.ndarray, threshold_db: float = -60.0, sr: int = 16000, frame_ms: float = 25.0) -> bool:
    """True when no ``frame_ms`` window of ``wav`` is louder than ``threshold_db`` dBFS.

    wav: float (S,) or (C,S), full scale 1.0. Loudness is the RMS of non-overlapping
    ``frame_ms`` windows (a shorter clip is one window); the loudest one is compared with
    ``threshold_db`` (dB relative to full scale). An empty signal is silent.
    """
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)  # (C,S)->(S,)
    if x.size == 0:
        return True
    n = max(1, int(round(sr * frame_ms / 1000.0)))
    pad = (-x.size) % n
    frames = np.pad(x, (0, pad)).reshape(-1, n)  # (S,)->(T,n); zero-padded tail
    rms = np.sqrt(np.mean(frames**2, axis=1))  # (T,n)->(T,)
    loudest_db = 20.0 * np.log10(max(float(rms.max()), 1e-12))
    return loudest_db < threshold_db


def save_audio(path: str | Path, wav: np.ndarray, sr: int) -> Path:
    """Write ``wav`` atomically (no half-written file on error).

    wav: float (S,) or (C,S) with C in {1,2}, in [-1, 1], at ``sr`` Hz. Samples outside
    [-1, 1] are clipped (with a warning that counts them). The format follows the suffix:
    .wav/.flac (16-bit PCM), .ogg (Vorbis), .mp3, written with soundfile.
    Returns the final path.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _WRITE_SUBTYPES:
        raise InputError(f"cannot write audio to {p}: unsupported suffix '{p.suffix}'; "
                         f"use one of {sorted(_WRITE_SUBTYPES)}")
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]  # (S,)->(1,S)
    if x.ndim != 2 or x.shape[0] not in (1, 2) or x.shape[1] == 0:
        raise InputError(f"cannot write audio to {p}: expected (S,) or (C,S) with C<=2 and S>0, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"cannot write audio to {p}: the signal has NaN/Inf samples")
    n_clip = int(np.count_nonzero(np.abs(x) > 1.0))
    if n_clip:
        warnings.warn(f"save_audio({p}): clipped {n_clip} samples outside [-1, 1]", stacklevel=2)
        x = np.clip(x, -1.0, 1.0)
    import soundfile as sf

    with atomic_path(p) as tmp:
        sf.write(str(tmp), x.T, sr, subtype=_WRITE_SUBTYPES[suffix])  # (C,S)->(S,C)
    return p
