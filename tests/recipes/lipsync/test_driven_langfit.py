"""Auto mode checks that the English phone recogniser fits the speech (vocalic share of its phones).

English (real GRID speech, eSpeak en-us) keeps English phones; eSpeak Mandarin and Spanish get the
syllable envelope with the score in the report. Speech under MIN_SPEECH_S is not judged.
"""

from __future__ import annotations

import numpy as np
import pytest

from a2v.recipes.lipsync.driven.langfit import MAX_VOCALIC_PCT, MIN_SPEECH_S, english_fit, vocalic_share
from a2v.recipes.lipsync.driven.params import mouth_parameters

SR, FPS = 16000, 25.0
# three sentences per voice, about 7-10 s of speech each
SPEECH = {
    "en-us": ["Please call Stella and ask her to bring these things with her from the store.",
              "She sells sea shells by the sea shore every summer.",
              "I would like a cup of tea with milk and no sugar, please."],
    "cmn-latn-pinyin": ["jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 yi4 qi3 qu4 gong1 yuan2 san4 bu4 ba5",
                        "ming2 tian1 zao3 shang5 wo3 men5 zai4 che1 zhan4 jian4 mian4",
                        "zhe4 ben3 shu1 fei1 chang2 you3 yi4 si1 ni3 ying1 gai1 kan4 kan4"],
    "es": ["Nos vemos mañana en la estación antes de las nueve.",
           "Los niños jugaron al fútbol en el parque hasta que oscureció.",
           "Este libro es muy interesante, deberías leerlo."],
}


def _joined(wavs: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(int(0.3 * SR), np.float32)
    return np.concatenate([x for w in wavs for x in (w, gap)])  # (S,)


def test_vocalic_share_and_rule_closed_form():
    segs = [("SIL", 0.0, 0.5), ("S", 0.5, 0.6), ("AH", 0.6, 0.9), ("T", 0.9, 1.0), ("SIL", 1.0, 2.0)]
    pct, speech = vocalic_share(segs)
    assert pct == pytest.approx(60.0) and speech == pytest.approx(0.5)
    assert english_fit(segs).fits is None  # 0.5 s: too short to judge
    reps = int(np.ceil(MIN_SPEECH_S / 0.5))
    long_ = [(p, s + k, e + k) for k in range(reps) for p, s, e in segs]  # same %V, reps * 0.5 s of speech
    fit = english_fit(long_)
    assert MAX_VOCALIC_PCT < 60.0 and fit.fits is False and fit.as_dict()["vocalic_pct"] == 60.0
    clusters = [(p, s + k, e + k) for k in range(reps) for p, s, e in
                [("S", 0.0, 0.1), ("T", 0.1, 0.2), ("R", 0.2, 0.3), ("IH", 0.3, 0.45), ("NG", 0.45, 0.5)]]
    assert english_fit(clusters).fits is True  # 30 % vowels
    assert vocalic_share([("SIL", 0.0, 1.0)])[1] == 0.0 and np.isnan(vocalic_share([])[0])


@pytest.fixture(scope="module")
def voices() -> dict[str, np.ndarray]:
    pytest.importorskip("pocketsphinx")
    from a2v.audio import synthesize_speech
    from a2v.errors import MissingDependencyError

    try:
        return {v: _joined([synthesize_speech(t, voice=v) for t in texts]) for v, texts in SPEECH.items()}
    except MissingDependencyError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("voice", ["cmn-latn-pinyin", "es"])
def test_non_english_speech_gets_the_envelope_with_the_score(voices, voice):
    wav = voices[voice]
    n = round(len(wav) / SR * FPS)
    op, sp, info = mouth_parameters(wav, SR, FPS, n, mode="auto", language="auto")
    fit = info["english_fit"]
    assert fit["speech_s"] >= MIN_SPEECH_S and fit["vocalic_pct"] > MAX_VOCALIC_PCT
    assert info["mode"] == "envelope" and not sp.any() and op.shape == (n,)
    assert "does not fit English" in info["mode_reason"] and "--language en" in info["mode_reason"]


def test_english_speech_keeps_phones(voices):
    wav = voices["en-us"]
    n = round(len(wav) / SR * FPS)
    _, sp, info = mouth_parameters(wav, SR, FPS, n, mode="auto", language="auto")
    assert info["english_fit"]["verdict"] == "fits English", info["english_fit"]
    assert info["mode"] == "phoneme+envelope" and sp.std() > 0.05
    # a language given skips the check: English phones for "en", the envelope for another code
    _, _, info_en = mouth_parameters(wav, SR, FPS, n, mode="auto", language="en")
    assert "english_fit" not in info_en and info_en["mode"] == "phoneme+envelope"


def test_short_speech_is_not_judged(voices):
    wav = voices["es"][: int(2.0 * SR)]  # 2 s: under MIN_SPEECH_S of phones
    n = round(len(wav) / SR * FPS)
    _, _, info = mouth_parameters(wav, SR, FPS, n, mode="auto", language="auto")
    assert info["english_fit"]["verdict"] == "too short to tell"
    assert info["mode"] != "envelope" or "disagrees" in info["mode_reason"] or "no phones" in info["mode_reason"]


def test_grid_english_keeps_phones(grid_clips):
    pytest.importorskip("pocketsphinx")
    from a2v.recipes.lipsync.inputs import load_speech

    wav = _joined([load_speech(c).mono for c in grid_clips])  # 11 speakers, about 18 s of speech
    n = round(len(wav) / SR * FPS)
    _, _, info = mouth_parameters(wav, SR, FPS, n, mode="auto", language="auto")
    assert info["english_fit"]["verdict"] == "fits English", info["english_fit"]
    assert info["mode"] == "phoneme+envelope"


def test_cli_reports_the_check_and_prints_one_note(voices, tmp_path, capsys):
    pytest.importorskip("skimage")
    import json

    from skimage import data
    from skimage.transform import resize

    from a2v.audio import save_audio
    from a2v.cli import main
    from a2v.video import write_png

    photo = write_png(tmp_path / "face.png", (resize(data.astronaut(), (256, 256)) * 255).astype(np.uint8))
    wav = save_audio(tmp_path / "zh.wav", voices["cmn-latn-pinyin"], SR)
    out = tmp_path / "out.mp4"
    args = ["lipsync", "generate", "--face", str(photo), "--audio", str(wav), "-o", str(out),
            "--fps", "5", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    cap = capsys.readouterr()
    report = json.loads(cap.out)
    assert report["mode"] == "envelope" and report["english_fit"]["verdict"] == "does not fit English"
    notes = [ln for ln in cap.err.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "envelope mode" in notes[0] and "does not fit English" in notes[0], cap.err
    assert "--langid-model" in notes[0] and "language_id" not in report  # the note points to a language identifier
    assert out.is_file() and out.stat().st_size > 0
