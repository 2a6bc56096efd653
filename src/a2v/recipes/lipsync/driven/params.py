"""Audio -> per-frame mouth parameters (open, spread), by phones, loudness, or both.

- ``"phoneme"``: PocketSphinx phone timing (forced alignment when a transcript is given, phone
  recognition otherwise) -> visemes with coarticulation (:mod:`.visemes`); English only.
- ``"envelope"``: one jaw opening per syllable, closed in pauses (:mod:`.syllables`); any
  language, no lip shape (spread 0).
- ``"auto"``: phone shapes scaled by loudness (``open = viseme * (k + (1 - k) * loudness)``) so
  emphasis shows; falls back to the envelope when PocketSphinx is missing, the language is not
  English, alignment fails, the phone track disagrees with the loudness (correlation below
  ``MIN_AGREEMENT``: recognition of non-English or noisy speech yields phones at random times),
  or, with ``language="auto"`` and recognised phones, the speech does not fit English
  (:mod:`.langfit`: vocalic share of the phones, judged from 5 s of speech). Given Whisper's
  language (``language_id``, :mod:`.langid`) with enough confidence, that decides instead of the
  vocalic share: English -> phones (still subject to the loudness agreement), else the envelope.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from a2v.errors import A2VError, InputError
from a2v.recipes.lipsync.driven.envelope import envelope_opening
from a2v.recipes.lipsync.driven.langfit import EnglishFit, english_fit
from a2v.recipes.lipsync.driven.langid import langid_note, unsure_note
from a2v.recipes.lipsync.driven.syllables import articulated_opening
from a2v.recipes.lipsync.driven.visemes import viseme_tracks

Mode = Literal["auto", "phoneme", "envelope"]
MODES: tuple[str, ...] = ("auto", "phoneme", "envelope")
# Accepted ``language`` values (CLI, server, Python): "auto" = decide from the speech whether the
# English phone recogniser fits; "en" = English phones; any other code = the articulated envelope.
LANGUAGES: tuple[str, ...] = (
    "auto", "en", "zh", "yue", "ja", "ko", "es", "pt", "fr", "it", "de", "nl", "sv", "pl", "ru", "uk",
    "tr", "ar", "fa", "hi", "bn", "vi", "th", "id", "other",
)


def check_language(language: str) -> str:
    """Normalise a language value ("EN-us" -> "en", "zh_CN" -> "zh"); InputError if not in :data:`LANGUAGES`."""
    code = str(language).strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGES:
        raise InputError(f"language '{language}' is not supported; use one of {', '.join(LANGUAGES)}")
    return code


MIN_AGREEMENT = 0.3  # correlation of viseme opening vs loudness opening below which "auto" distrusts phones
LOUDNESS_FLOOR = 0.35  # share of the viseme opening kept at the quietest voiced frames in "auto"


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _phones_reason(language: str, fit: EnglishFit | None, lid: dict | None = None) -> str:
    """Why English phones were used, in one line."""
    if language == "en":
        return "English phone timing (language given)"
    if lid is not None and lid["confident"]:
        return f"{langid_note(lid)}: English phone timing, which agrees with loudness"
    if lid is not None and fit is not None:
        return f"{unsure_note(lid)}: {_phones_reason(language, fit)}"
    if fit is None:
        return "English phone timing agrees with loudness (transcript given)"
    if fit.fits:
        return f"English phone timing agrees with loudness; {fit.note()}"
    return (
        f"English phone timing agrees with loudness; {fit.note()}: pass --language for non-English speech"
    )


def _phones(wav: np.ndarray, sr: int, transcript: str | None) -> tuple[list[tuple[str, float, float]], str]:
    from a2v.encoders import phoneme_segments

    if transcript:
        return phoneme_segments(wav, sr, transcript=transcript), "forced alignment of the transcript"
    return phoneme_segments(wav, sr), "phone recognition (no transcript)"


def mouth_parameters(
    wav: np.ndarray,
    sr: int,
    fps: float,
    n_frames: int,
    *,
    transcript: str | None = None,
    mode: Mode = "auto",
    language: str = "auto",
    language_id: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Mouth parameters per video frame from speech.

    language: one of :data:`LANGUAGES`; another than "en"/"auto" makes "auto" use the envelope.
    language_id: Whisper's verdict on the speech (:func:`.langid.speech_language`), used by "auto"
    with ``language="auto"`` (reported as ``language_id``); None = the vocalic-share rule alone.

    wav: float32 (S,) in [-1, 1] at ``sr`` Hz; fps: video frame rate; n_frames: F.
    Returns (open float32 (F,) in [0, 1], spread float32 (F,) in [-1, 1], info dict with
    ``mode`` (used), ``mode_reason``, ``phones`` (count of non-silence phones), ``phone_source``,
    ``phone_loudness_agreement``).
    """
    if mode not in ("auto", "phoneme", "envelope"):
        raise InputError(f"unknown lip-sync mode '{mode}': use auto, phoneme or envelope")
    language = check_language(language)
    env = envelope_opening(wav, sr, fps, n_frames)  # (F,) loudness, scales the phone shapes
    art, nuclei = articulated_opening(wav, sr, fps, n_frames)  # (F,) one opening per syllable
    zeros = np.zeros(n_frames, np.float32)
    info: dict = {"mode_requested": mode, "language": language, "phones": 0, "syllable_nuclei": nuclei,
                  "syllables_per_s": round(nuclei / max(len(wav) / sr, 1e-9), 2)}
    if mode == "envelope":
        return art, zeros, {**info, "mode": "envelope", "mode_reason": "requested"}
    if mode == "auto" and language not in ("en", "auto"):
        return art, zeros, {**info, "mode": "envelope", "mode_reason": f"language '{language}' is not English"}
    lid = language_id if mode == "auto" and language == "auto" else None
    if lid is not None:
        info["language_id"] = lid
        if lid["confident"] and lid["language"] != "en":
            return art, zeros, {
                **info, "mode": "envelope",
                "mode_reason": f"{langid_note(lid)}, not English: syllable envelope used "
                               "(pass --language en to force English phones)",
            }
    try:
        segs, source = _phones(wav, sr, transcript)
    except A2VError as e:  # missing pocketsphinx, unalignable transcript, words not in the dictionary
        if mode == "phoneme":
            raise
        if transcript:
            try:
                segs, source = _phones(wav, sr, None)
                source += f" (transcript not used: {e})"
            except A2VError as e2:
                return art, zeros, {**info, "mode": "envelope", "mode_reason": f"phone timing failed: {e2}"}
        else:
            return art, zeros, {**info, "mode": "envelope", "mode_reason": f"phone timing failed: {e}"}
    vis_open, spread = viseme_tracks(segs, fps, n_frames)  # (F,), (F,)
    n_phones = sum(1 for p, _, _ in segs if p != "SIL")
    agree = _corr(vis_open, env)
    info.update(phones=n_phones, phone_source=source, phone_loudness_agreement=round(agree, 3))
    if mode == "phoneme":
        return vis_open, spread, {**info, "mode": "phoneme", "mode_reason": "requested"}
    if n_phones == 0 or agree < MIN_AGREEMENT:
        why = (
            "no phones recognised"
            if n_phones == 0
            else f"phone timing disagrees with loudness (r={agree:.2f})"
        )
        if lid is not None and lid["confident"]:  # Whisper says English
            return art, zeros, {**info, "mode": "envelope", "mode_reason": f"{langid_note(lid)} but {why}: noisy speech?"}
        return art, zeros, {**info, "mode": "envelope", "mode_reason": f"{why}: not English or noisy speech?"}
    fit = None
    whisper_en = lid is not None and lid["confident"]  # and English: other languages returned above
    if language == "auto" and not whisper_en and source.startswith("phone recognition"):  # a transcript says English
        fit = english_fit(segs)
        info["english_fit"] = fit.as_dict()
        if fit.fits is False:
            pre = f"{unsure_note(lid)}: " if lid is not None else ""
            return art, zeros, {
                **info, "mode": "envelope",
                "mode_reason": f"{pre}{fit.note()}; syllable envelope used (pass --language en to force English phones)",
            }
    opened = vis_open * (
        LOUDNESS_FLOOR + (1 - LOUDNESS_FLOOR) * env
    )  # (F,) shape from phones, size from loudness
    opened = np.clip(
        opened / max(float(np.percentile(opened, 98)), 1e-3) * float(np.percentile(vis_open, 98)), 0, 1
    )
    return (
        opened.astype(np.float32),
        spread,
        {**info, "mode": "phoneme+envelope", "mode_reason": _phones_reason(language, fit, lid)},
    )
