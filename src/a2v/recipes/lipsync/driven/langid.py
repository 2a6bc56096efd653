"""Which language is spoken? A Whisper model the user gives (``--langid-model``) decides for ``auto``.

Without it ``auto`` judges from the rhythm of the recognised English phones (:mod:`.langfit`),
which is not a language identifier. With it: Whisper's language (:func:`a2v.encoders.langid.identify_language`)
decides when its probability is at least :data:`MIN_LANGID_PROB`: English -> English phones (still
only when their timing agrees with the loudness), any other language -> the syllable envelope;
below that the %V rule decides, and the report says so.
"""

from __future__ import annotations

import os

import numpy as np

# ours: Whisper's probability of its top language (softmax over its ~100 language tokens) below
# which auto mode does not trust it and falls back to the %V rule; a coin flip between two languages
# is no answer. Not tuned: no Whisper weights were at hand to measure real speech.
MIN_LANGID_PROB = 0.5


def lipsync_language(code: str) -> str:
    """Whisper's code -> an entry of :data:`~.params.LANGUAGES` ("yue" stays "yue"; unlisted -> "other")."""
    from a2v.recipes.lipsync.driven.params import LANGUAGES

    return code if code in LANGUAGES and code != "auto" else "other"


def speech_language(wav: np.ndarray, sr: int, model: str | os.PathLike, device: str | None = None) -> dict:
    """Language of speech ``wav`` float32 (S,) at ``sr`` Hz by Whisper folder ``model``, JSON-ready:

    ``model``, ``code`` (Whisper's, ISO 639-1), ``prob`` in [0, 1], ``top3`` [{code, prob}],
    ``language`` (``code`` mapped to LANGUAGES), ``min_prob`` and ``confident`` (prob >= min_prob).
    """
    from a2v.encoders.langid import identify_language

    code, prob, top3 = identify_language(wav, sr, model, device=device, set_key="--langid-model")
    return {
        "model": str(model),
        "code": code,
        "prob": round(prob, 4),
        "top3": [{"code": c, "prob": round(p, 4)} for c, p in top3],
        "language": lipsync_language(code),
        "min_prob": MIN_LANGID_PROB,
        "confident": bool(prob >= MIN_LANGID_PROB),
    }


def langid_note(lid: dict) -> str:
    """Whisper's verdict in a few words: "Whisper identifies zh (p=0.99)"."""
    return f"Whisper identifies {lid['code']} (p={lid['prob']:.2f})"


def unsure_note(lid: dict) -> str:
    """Why Whisper's answer was not used, in a few words."""
    return f"Whisper unsure ({lid['code']} p={lid['prob']:.2f} < {lid['min_prob']}), so the vowel-share rule decides"
