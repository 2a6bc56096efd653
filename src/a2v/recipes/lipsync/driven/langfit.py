"""Does the English phone recogniser fit this speech? Offline cues from PocketSphinx's English model.

Features of one utterance (16 kHz mono speech):

- ``phonotactic_free``: mean English phone-trigram log probability (natural log, per phone) of the
  phones found by a free phone loop (the allphone search with the phone LM weight near 0), i.e.
  how English-like the sequence of sounds is when the recogniser is not pushed towards English.
- ``phonotactic_lm``: the same for the phone decoding with the phone LM (``lw`` 2, as
  :func:`a2v.encoders.sphinx.phoneme_segments` uses).
- ``acoustic_cost``: acoustic log likelihood per frame lost by decoding with the English phone
  LM instead of the free loop (>= 0 up to search pruning): English speech loses little.
- ``word_posterior``: mean posterior of the words of the English word decoder (n-gram LM),
  ``word_share``: share of the decoded span covered by words rather than silence/fillers.
- ``f0_slope``: median absolute F0 slope in semitones per second over voiced frames (pYIN);
  tone languages move pitch more within syllables.
"""

from __future__ import annotations

import math

import numpy as np

_LN_BASE = math.log(1.0001)  # PocketSphinx log base: its integer scores are in units of log(1.0001)
_FREE_LW = 0.01  # phone LM weight of the "free" loop (0 is refused by the decoder)


def _ln(p: float) -> float:
    """Natural log of a probability the Python bindings return as ``base**score`` (may underflow)."""
    return math.log(p) if p > 0 else -745.0  # exp underflow: the smallest double


def _phone_decode(pcm: bytes, lw: float):
    """Allphone decoding with the English phone LM at weight ``lw`` -> (phones, ln acoustic score, frames)."""
    from a2v.encoders.sphinx import _run, _sphinx

    ps = _sphinx()
    d = ps.Decoder(
        samprate=16000, loglevel="FATAL", allphone=ps.get_model_path("en-us/en-us-phone.lm.bin"),
        lw=lw, pip=0.3, beam=1e-200, pbeam=1e-20,
    )
    _run(d, pcm)
    segs = list(d.seg() or [])
    phones = ["SIL" if s.word.startswith("+") else s.word for s in segs]
    return phones, sum(_ln(s.ascore) for s in segs), max(d.n_frames(), 1)


def _phone_lm():
    from a2v.encoders.sphinx import _sphinx

    ps = _sphinx()
    return ps.NGramModel.readfile(ps.get_model_path("en-us/en-us-phone.lm.bin"))


def phonotactic_logprob(phones: list[str], lm=None) -> float:
    """Mean natural-log trigram probability per non-silence phone of ``phones`` under the English phone LM."""
    lm = lm or _phone_lm()
    seq = ["SIL", "SIL", *phones]
    vals = [
        lm.prob([seq[i], seq[i - 1], seq[i - 2]]) * _LN_BASE  # target first, then history (newest first)
        for i in range(2, len(seq))
        if seq[i] != "SIL"
    ]
    return float(np.mean(vals)) if vals else float("nan")


def phonotactic_gain(phones: list[str], lm=None) -> float:
    """Trigram minus unigram mean log probability per non-silence phone: fit of the phone *order*."""
    lm = lm or _phone_lm()
    uni = [lm.prob([p]) * _LN_BASE for p in phones if p != "SIL"]
    return phonotactic_logprob(phones, lm) - float(np.mean(uni)) if uni else float("nan")


def _word_decode(pcm: bytes) -> tuple[float, float, int]:
    """English word decoding -> (mean word posterior, share of frames in words, word count)."""
    from a2v.encoders.sphinx import _new_decoder, _run

    d = _new_decoder("lm")
    _run(d, pcm)
    probs, word_frames, total = [], 0, 0
    for s in d.seg() or []:
        n = s.end_frame - s.start_frame + 1
        if s.word in ("<s>", "</s>"):
            continue
        total += n
        if s.word.startswith(("<", "[", "+")):
            continue
        word_frames += n
        probs.append(s.prob)
    return (float(np.mean(probs)) if probs else 0.0), word_frames / max(total, 1), len(probs)


def f0_slope(wav: np.ndarray, sr: int) -> float:
    """Median |dF0/dt| in semitones per second over pairs of voiced 10 ms frames (pYIN, 60-400 Hz)."""
    import librosa

    f0, voiced, _ = librosa.pyin(wav, fmin=60, fmax=400, sr=sr, frame_length=1024, hop_length=160)  # (T,)
    st = 12 * np.log2(np.where(voiced, f0, np.nan) / 100.0)  # (T,) semitones re 100 Hz
    d = np.abs(st[5:] - st[:-5]) / 0.05  # (T-5,) semitones per s over 50 ms; NaN across unvoiced frames
    d = d[np.isfinite(d)]
    return float(np.mean(d)) if d.size else float("nan")


def english_fit_features(wav: np.ndarray, sr: int, words: bool = True, f0: bool = True) -> dict[str, float]:
    """Features of float32 mono speech ``wav`` (S,) at ``sr`` Hz (see the module docstring)."""
    from a2v.audio.io import resample
    from a2v.encoders.sphinx import _pcm16

    pcm, _ = _pcm16(wav, sr)
    lm = _phone_lm()
    free, a_free, n = _phone_decode(pcm, _FREE_LW)
    dec, a_lm, _ = _phone_decode(pcm, 2.0)
    out = {
        "phonotactic_free": phonotactic_logprob(free, lm),
        "phonotactic_lm": phonotactic_logprob(dec, lm),
        "gain_free": phonotactic_gain(free, lm),
        "gain_lm": phonotactic_gain(dec, lm),
        "phones_per_s": sum(p != "SIL" for p in free) / (len(wav) / sr),
    }
    if words:
        post, share, nw = _word_decode(pcm)
        out.update(word_posterior=post, word_share=share, words_per_s=nw / (len(wav) / sr))
    if f0:
        x = resample(np.asarray(wav, np.float32), sr, 16000) if sr != 16000 else np.asarray(wav, np.float32)
        out["f0_slope"] = f0_slope(x, 16000)
    return out
