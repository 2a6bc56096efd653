"""A synthetic tongue corpus in UltraSuite format, for tests, benchmarks and trying the recipe without data.

Each utterance is a tone whose pitch glides between random targets; the "tongue" is a bright
arc across the scanlines whose depth follows the pitch (higher pitch -> shallower arc), so a
model can only predict the contour from the audio's spectrum. Files per utterance:
``name.ult`` (uint8 frames, NumVectors x PixPerVector), ``name.param``, ``name.wav`` (16 kHz)
and ``name.txt`` (a transcript naming the pitch targets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2v.recipes.tongue.ultrasound import UltParams, write_ult

__all__ = ["make_synthetic_corpus", "synthetic_utterance"]

_WORDS = ("low", "mid", "high")


def synthetic_utterance(rng: np.random.Generator, seconds: float, fps: float, sr: int = 16000,
                        num_vectors: int = 32, pix_per_vector: int = 64) -> tuple[np.ndarray, np.ndarray, str]:
    """(scanlines uint8 (F,N,P) at ``fps``, wav float32 (S,) at ``sr``, transcript) for one utterance."""
    n_frames = int(round(seconds * fps))
    n_keys = max(2, int(seconds * 3) + 1)
    keys = rng.integers(0, 3, n_keys)  # pitch targets: 0 low, 1 mid, 2 high
    t_key = np.linspace(0, seconds, n_keys)
    level = lambda t: np.interp(t, t_key, keys.astype(np.float64)) / 2  # noqa: E731  # in [0,1]
    t = np.arange(int(round(seconds * sr))) / sr  # (S,) s
    freq = 300.0 * 2 ** (2.5 * level(t))  # (S,) Hz, 300..1700
    wav = (0.3 * np.sin(2 * np.pi * np.cumsum(freq) / sr)).astype(np.float32)  # (S,)
    tf = (np.arange(n_frames) + 0.5) / fps  # (F,) frame centres in s
    depth = (0.75 - 0.45 * level(tf)) * pix_per_vector  # (F,) echo sample of the arc apex
    vec = np.linspace(-1, 1, num_vectors)  # (N,)
    pix = np.arange(pix_per_vector)  # (P,)
    arc = depth[:, None] + 0.15 * pix_per_vector * vec[None] ** 2  # (F,N) arc depth per scanline
    img = 220 * np.exp(-0.5 * ((pix[None, None] - arc[..., None]) / 1.5) ** 2)  # (F,N,P)
    img += rng.normal(0, 6, img.shape) + 20
    frames = np.clip(img, 0, 255).astype(np.uint8)
    return frames, wav, " ".join(_WORDS[k] for k in keys)


def make_synthetic_corpus(folder: str | Path, n_utterances: int = 8, seconds: float = 1.0, fps: float = 60.0,
                          seed: int = 0, offset_s: float = 0.0) -> list[Path]:
    """Write ``n_utterances`` UltraSuite-style utterances into ``folder``; returns the ``.ult`` paths.

    ``offset_s``: TimeInSecsOfFirstFrame written to each .param; the audio gets that much
    extra lead-in (positive) so that synchronising restores the alignment.
    """
    import soundfile as sf

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_utterances):
        frames, wav, text = synthetic_utterance(rng, seconds, fps)
        prm = UltParams(NumVectors=frames.shape[1], PixPerVector=frames.shape[2], ZeroOffset=20, BitsPerPixel=8,
                        Angle=0.025, Kind=0, PixelsPerMm=4.0, FramesPerSec=fps, TimeInSecsOfFirstFrame=offset_s)
        if offset_s > 0:
            wav = np.concatenate([np.zeros(int(round(offset_s * 16000)), np.float32), wav])  # (S,)->(S',)
        name = root / f"utt{i:03d}"
        write_ult(name.with_suffix(".ult"), frames, prm)
        sf.write(name.with_suffix(".wav"), wav, 16000, subtype="FLOAT")
        name.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        out.append(name.with_suffix(".ult"))
    return out
