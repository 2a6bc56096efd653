"""Does the English phone recogniser fit the speech? The vocalic share of its phones (speech rhythm).

English is stress-timed: unstressed vowels are short or reduced and consonants cluster, so vowels
take a smaller share of the speech time (%V) than in syllable-timed languages (Spanish, Italian,
French) or in Mandarin (Ramus, Nespor & Mehler 1999, "Correlates of linguistic rhythm in the
speech signal", Cognition 73: %V and deltaC place English, Dutch and Polish apart from Spanish,
Italian, French, Catalan and Japanese). Here %V is measured on the English phone recogniser's own
output (:func:`a2v.encoders.sphinx.phoneme_segments` without a transcript: ARPAbet vowels vs
consonants, silence and noise left out), so it costs nothing beyond the phones ``auto`` already
computes.

Decision (ours; :data:`MAX_VOCALIC_PCT` and :data:`MIN_SPEECH_S` chosen on the tuning half of
``benchmarks/lipsync_langfit.py``, see docs/lipsync.md): English when %V <= 57.6, judged only
with at least 5 s of recognised speech (on 2-4 s clips %V scatters too much to decide).
Stress-timed languages such as German fall on the English side and are not detected; slow
English (about 110 words a minute) can be judged not English and fast Mandarin English, and
noise recognised as consonants pulls %V towards English.
"""

from __future__ import annotations

from dataclasses import dataclass

# ARPAbet vowels of the CMU phone set (PocketSphinx en-us); every other non-silence phone is a consonant.
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
MAX_VOCALIC_PCT = 57.6  # ours: %V above this = the speech does not fit English
MIN_SPEECH_S = 5.0  # ours: seconds of recognised (non-silence) phones needed to judge


@dataclass(frozen=True)
class EnglishFit:
    """Verdict on one utterance. ``vocalic_pct``: vowels' share of the recognised phone time, %;
    ``speech_s``: recognised non-silence phone time, s; ``fits``: True/False, None = too short."""

    vocalic_pct: float
    speech_s: float
    fits: bool | None

    @property
    def verdict(self) -> str:
        return {True: "fits English", False: "does not fit English", None: "too short to tell"}[self.fits]

    def note(self) -> str:
        """One line: the verdict, the score and the rule."""
        if self.fits is None:
            return (
                f"too little speech to check that it is English ({self.speech_s:.1f} s of phones, "
                f"need {MIN_SPEECH_S:.0f} s)"
            )
        return (
            f"speech {self.verdict}: vowels take {self.vocalic_pct:.1f} % of the recognised speech "
            f"(English <= {MAX_VOCALIC_PCT} %)"
        )

    def as_dict(self) -> dict:
        return {
            "vocalic_pct": round(self.vocalic_pct, 2),
            "speech_s": round(self.speech_s, 2),
            "max_vocalic_pct": MAX_VOCALIC_PCT,
            "min_speech_s": MIN_SPEECH_S,
            "verdict": self.verdict,
        }


def vocalic_share(segs: list[tuple[str, float, float]]) -> tuple[float, float]:
    """Phone segments [(ARPAbet phone or SIL, start_s, end_s)] -> (%V, non-silence time in s).

    %V = 100 * vowel time / (vowel + consonant time); NaN when there is no non-silence phone.
    """
    vowel = sum(e - s for p, s, e in segs if p in VOWELS)
    speech = sum(e - s for p, s, e in segs if p != "SIL")
    return (100.0 * vowel / speech if speech > 0 else float("nan")), float(speech)


def english_fit(segs: list[tuple[str, float, float]]) -> EnglishFit:
    """Whether recognised English phones ``segs`` (see :func:`vocalic_share`) fit English speech."""
    pct, speech_s = vocalic_share(segs)
    if speech_s < MIN_SPEECH_S:
        return EnglishFit(pct, speech_s, None)
    return EnglishFit(pct, speech_s, bool(pct <= MAX_VOCALIC_PCT))
