"""Offline English recognition and alignment with PocketSphinx 5 (CMU Sphinx, ships its model).

- :func:`transcribe_sphinx`: n-gram decoding -> words with timings.
- :func:`align_words` / :func:`phoneme_segments`: forced alignment of a known transcript
  (``Decoder.set_align_text``, then a second pass with ``set_alignment`` for phones), or,
  without a transcript, phone recognition (allphone search with the phone n-gram model).
Phones are CMUdict/ARPAbet symbols (AA, AE, ..., ZH) plus SIL. Times are in seconds of the
input; PocketSphinx works at 100 frames/s, so timings have 10 ms resolution.
The input is padded with ``_PAD_S`` of silence on each side (the aligner needs a little
leading silence); times are shifted back and clipped to [0, duration].
"""

from __future__ import annotations

import re

import numpy as np

from a2v.encoders.asr import Transcript
from a2v.errors import InputError

_SR = 16000
_PAD_S = 0.25
_LONG_S = 60.0  # longer inputs are fed in blocks of _BLOCK_S with a progress bar
_BLOCK_S = 10.0
_SKIP = {"<s>", "</s>", "<sil>"}
_NO_ALIGN = "could not align the transcript to the audio; check that it is the text spoken in it"


def _sphinx():
    try:
        import pocketsphinx
    except ImportError as e:
        from a2v.errors import missing_package

        raise missing_package("pocketsphinx", "asr", "offline speech recognition") from e
    return pocketsphinx


def _new_decoder(mode: str):
    """A fresh decoder for ``mode`` ("lm", "align", "allphone"); ~0.3 s to build.

    Not reused between inputs: a decoder adapts its cepstral mean across utterances, so a
    reused one would give different timings for the same input.
    """
    ps = _sphinx()
    common = {"samprate": _SR, "loglevel": "FATAL"}
    if mode == "lm":
        return ps.Decoder(**common)
    if mode == "align":  # bestpath off: its lattice rescoring can give phones impossible durations
        # Wide beams: the default ones prune the only allowed path on some sentences (the search
        # follows one word sequence, so the cost stays small).
        return ps.Decoder(lm=None, bestpath=False, beam=1e-100, pbeam=1e-100, wbeam=1e-80, **common)
    # allphone settings of PocketSphinx's own phoneme test (lw, pip, beams)
    model = ps.get_model_path("en-us/en-us-phone.lm.bin")
    return ps.Decoder(allphone=model, lw=2.0, pip=0.3, beam=1e-200, pbeam=1e-20, **common)


def _pcm16(wav: np.ndarray, sr: int) -> tuple[bytes, float]:
    """float (S,) at ``sr`` -> (int16 little-endian bytes at 16 kHz with padding, duration in s)."""
    from a2v.audio.io import resample

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(0) if x.shape[0] < x.shape[1] else x.mean(1)  # (C,S)/(S,C)->(S,)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"speech recognition expects a non-empty mono waveform, got shape {np.shape(wav)}")
    if not np.all(np.isfinite(x)):
        raise InputError("speech recognition input has NaN/Inf samples")
    duration = x.size / float(sr)
    x = resample(x, int(sr), _SR) if sr != _SR else x  # (S,)->(S16,)
    pad = np.zeros(int(_PAD_S * _SR), np.float32)
    x = np.concatenate([pad, x, pad])  # (S16,)->(S16+2P,)
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767.0)  # (S16+2P,) float in int16 range
    # Seeded +-1 LSB dither: digital silence has log energy -inf and decodes to spurious words.
    pcm += np.random.default_rng(0).integers(-1, 2, size=pcm.shape)
    return np.clip(pcm, -32768, 32767).astype("<i2").tobytes(), duration


def _run(decoder, pcm: bytes, progress: bool = False) -> None:
    """Decode one utterance; long inputs go in blocks (progress bar), short ones in one call."""
    decoder.start_utt()
    n_bytes = 2 * int(_SR * _BLOCK_S)  # int16: 2 bytes a sample
    if len(pcm) <= 2 * _SR * _LONG_S:
        decoder.process_raw(pcm, full_utt=True)
    else:
        from tqdm.auto import tqdm

        for i in tqdm(range(0, len(pcm), n_bytes), desc="pocketsphinx", unit="block", disable=not progress):
            decoder.process_raw(pcm[i : i + n_bytes])
    decoder.end_utt()


def _times(decoder, start_frame: int, end_frame: int, duration: float) -> tuple[float, float]:
    """Frame span (inclusive end) -> (start_s, end_s) in input time, clipped to [0, duration]."""
    frate = float(decoder.config["frate"])
    s = min(max(start_frame / frate - _PAD_S, 0.0), duration)
    e = min(max((end_frame + 1) / frate - _PAD_S, 0.0), duration)
    s, e = min(round(s, 4), duration), min(round(e, 4), duration)  # 0.1 ms grid, never past the end
    return s, max(e, s)


def _clean_word(w: str) -> str | None:
    """Dictionary word -> plain word (``don't(2)`` -> ``don't``); None for silence/noise/fillers."""
    if w in _SKIP or w.startswith(("[", "+", "<")):
        return None
    return re.sub(r"\(\d+\)$", "", w)


def normalize_text(text: str) -> list[str]:
    """Lower-case words of ``text`` for the CMU dictionary: punctuation except apostrophes removed."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("\u2019", "'")).split()


def transcribe_sphinx(wav: np.ndarray, sr: int, progress: bool = True) -> Transcript:
    """English speech -> Transcript(text, words [(word, start_s, end_s)]) with PocketSphinx's n-gram model."""
    pcm, dur = _pcm16(wav, sr)
    d = _new_decoder("lm")
    _run(d, pcm, progress)
    words = []
    for seg in d.seg() or []:  # None: nothing recognised
        w = _clean_word(seg.word)
        if w is not None:
            words.append((w, *_times(d, seg.start_frame, seg.end_frame, dur)))
    return Transcript(" ".join(w for w, _, _ in words), words)


def _align_decoder(transcript: str):
    words = normalize_text(transcript)
    if not words:
        raise InputError("the transcript to align has no words; give the spoken text or none")
    d = _new_decoder("align")
    oov = sorted({w for w in words if d.lookup_word(w) is None})
    if oov:
        raise InputError(
            f"words not in the PocketSphinx English dictionary: {', '.join(oov[:10])}"
            f"{' ...' if len(oov) > 10 else ''}; spell them out or leave the transcript out"
        )
    d.set_align_text(" ".join(words))
    return d, words


def align_words(wav: np.ndarray, sr: int, transcript: str) -> list[tuple[str, float, float]]:
    """Forced alignment of ``transcript`` (English) to the speech: [(word, start_s, end_s)] in order."""
    pcm, dur = _pcm16(wav, sr)
    d, _ = _align_decoder(transcript)
    try:
        _run(d, pcm)
    except RuntimeError as e:
        raise InputError(_NO_ALIGN) from e
    segs = d.seg()
    if segs is None:
        raise InputError(_NO_ALIGN)
    out = []
    for seg in segs:
        w = _clean_word(seg.word)
        if w is not None:
            out.append((w, *_times(d, seg.start_frame, seg.end_frame, dur)))
    return out


def phoneme_segments(
    wav: np.ndarray, sr: int, transcript: str | None = None
) -> list[tuple[str, float, float]]:
    """Phone timing of English speech: [(phone, start_s, end_s)] covering the audio in order.

    With ``transcript``: forced alignment (word pass, then phone pass). Without: phone
    recognition (allphone search). Phones are ARPAbet without stress (AA..ZH) and SIL;
    noise phones (+NSN+, ...) are reported as SIL. Raises InputError for words missing from
    the dictionary or a transcript that cannot be aligned.
    """
    pcm, dur = _pcm16(wav, sr)
    if transcript is None:
        d = _new_decoder("allphone")
        _run(d, pcm)
        raw = [(s.word, s.start_frame, s.end_frame) for s in d.seg() or []]
    else:
        d, _ = _align_decoder(transcript)
        try:
            _run(d, pcm)  # word-level pass
            d.set_alignment()
            _run(d, pcm)  # phone-level pass
        except RuntimeError as e:
            raise InputError(_NO_ALIGN) from e
        al = d.get_alignment()
        if al is None:
            raise InputError(_NO_ALIGN)
        raw = [(p.name, p.start, p.start + p.duration - 1) for p in al.phones()]
    out = []
    for name, s, e in raw:
        phone = "SIL" if name.startswith("+") or name in {"<s>", "</s>", "<sil>"} else name
        start, end = _times(d, s, e, dur)
        if end > start:  # zero length: wholly inside the added padding
            out.append((phone, start, end))
    return out
