"""Non-English speech (eSpeak NG Mandarin, Spanish, German voices): the envelope mode articulates.

The old loudness map kept the mouth wide open (on these clips 40-47 % of frames above 0.75 of the
widest opening, i.e. above 0.3 of the eye distance). Now: one opening per syllable (count within
25 % of the syllables in the text), at most a few % of frames that wide, lips closed in a pause.
"""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.recipes.lipsync.driven.params import LANGUAGES, check_language, mouth_parameters

SR, FPS = 16000, 25.0
PAUSE_S = 0.6
# (voice, first phrase, second phrase, syllables in both)
SPEECH = [
    ("cmn-latn-pinyin", "jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 yi4 qi3 qu4 gong1 yuan2 san4 bu4 ba5",
     "ming2 tian1 zao3 shang5 wo3 men5 zai4 che1 zhan4 jian4 mian4", 27),
    ("es", "El zorro salta sobre el perro perezoso", "Nos vemos mañana en la estación", 21),
    ("de", "Der schnelle braune Fuchs springt über den Hund", "Wir sehen uns morgen früh am Bahnhof", 21),
]


@pytest.fixture(scope="module", params=SPEECH, ids=[s[0][:3] for s in SPEECH])
def speech(request):
    from a2v.audio import synthesize_speech

    voice, a, b, syllables = request.param
    wa, wb = synthesize_speech(a, voice=voice), synthesize_speech(b, voice=voice)
    wav = np.concatenate([wa, np.zeros(int(PAUSE_S * SR), np.float32), wb])  # (S,)
    pause = (len(wa) / SR, len(wa) / SR + PAUSE_S)
    return wav, pause, syllables, (len(wa) + len(wb)) / SR


def test_envelope_articulates_syllables_and_closes_in_pauses(speech):
    from scipy.signal import find_peaks

    wav, (p0, p1), syllables, speech_s = speech
    n = round(len(wav) / SR * FPS)
    op, sp, info = mouth_parameters(wav, SR, FPS, n, mode="auto", language="zh")
    assert info["mode"] == "envelope" and op.shape == (n,) and not sp.any()
    assert np.mean(op > 0.75) < 0.05  # wide open (> 0.3 eye distance) only rarely
    assert np.mean(op > 0.1) < 0.85 and op.mean() < 0.45  # not held open
    mid = slice(int((p0 + 0.12) * FPS), int((p1 - 0.12) * FPS))
    assert op[mid].max() < 0.05  # lips closed in the pause
    cycles = len(find_peaks(op, prominence=0.1)[0])  # open-close cycles of the jaw
    assert abs(cycles - syllables) <= 0.25 * syllables, (cycles, syllables)
    assert abs(info["syllable_nuclei"] / speech_s - syllables / speech_s) <= 0.25 * syllables / speech_s


def test_language_values_are_one_validated_list():
    assert {"auto", "en", "zh", "es", "de", "other"} <= set(LANGUAGES)
    assert check_language("zh_CN") == "zh" and check_language("EN-us") == "en"
    with pytest.raises(InputError, match="not supported"):
        check_language("xx")
