"""Does the English phone recogniser fit the speech? Features on English vs other languages.

Speech: the GRID clips (real English) and eSpeak NG voices (English en-us/en-gb; Mandarin
``cmn-latn-pinyin`` with pinyin text, Spanish, German, French, Italian; held-out voices and
languages only in the test half). Sentences alternate between a tuning half and a held-out half.

Features of one utterance (16 kHz mono), from PocketSphinx's English model, pYIN and nothing else:

- ``phonotactic_lm`` / ``gain_lm``: mean English phone-trigram log probability (natural log, per
  non-silence phone) of the phones of the allphone decoding with the phone LM at weight 2 (the
  decoding :func:`a2v.encoders.sphinx.phoneme_segments` uses); ``gain`` subtracts the unigram
  log probability (fit of the phone order rather than of the phone frequencies).
- ``phonotactic_free`` / ``gain_free``: the same for a free phone loop (phone LM weight 0.01).
- ``word_posterior``: mean posterior of the words of the English word decoder (n-gram LM);
  ``word_share``: share of the decoded span in words rather than silence/fillers; ``words_per_s``.
- ``f0_slope``: mean |F0 change| over 50 ms in semitones per second over voiced frames (pYIN).
Written here, not taken from a library: no offline language-id package with shipped weights is
at hand, and these are a few lines over PocketSphinx's decoder and phone LM.

Usage: .venv/bin/python benchmarks/lipsync_langfit.py [GRID_DIR]
  -> benchmarks/results/lipsync_langfit.json (one row per utterance, about 3 s each)
  -> benchmarks/results/lipsync_langfit_pooled.json (three utterances of one voice and split
     joined, 7-12 s: ``phonotactic_lm``/``gain_lm`` only)
  -> benchmarks/results/lipsync_langfit_rates.json (3-sentence joins at 110/150/200 words a minute
     and GRID joins; a rate-corrected rule fitted on the tuning half, for comparison)
  -> benchmarks/results/lipsync_langfit_lw.json (phone LM weight 0.5-8 on single utterances)
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

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
    from a2v.encoders.sphinx import _pcm16, phoneme_segments
    from a2v.recipes.lipsync.driven.langfit import vocalic_share

    pcm, _ = _pcm16(wav, sr)
    lm = _phone_lm()
    free, a_free, n = _phone_decode(pcm, _FREE_LW)
    dec, a_lm, _ = _phone_decode(pcm, 2.0)
    pct_v, speech_s = vocalic_share(phoneme_segments(wav, sr))  # the decoding auto mode uses
    out = {
        "pct_v": pct_v,
        "speech_s": speech_s,
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


SENTENCES: dict[str, list[str]] = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Please call Stella and ask her to bring these things with her from the store.",
        "We will meet at the station tomorrow morning before nine.",
        "She sells sea shells by the sea shore every summer.",
        "It was a bright cold day in April, and the clocks were striking thirteen.",
        "The children played football in the park until it got dark.",
        "I would like a cup of tea with milk and no sugar, please.",
        "Turn left at the next corner and the library is on your right.",
    ],
    "zh": [
        "jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 yi4 qi3 qu4 gong1 yuan2 san4 bu4 ba5",
        "ming2 tian1 zao3 shang5 wo3 men5 zai4 che1 zhan4 jian4 mian4",
        "wo3 xiang3 he1 yi4 bei1 cha2 bu2 yao4 tang2",
        "ta1 mei3 tian1 zao3 shang5 liu4 dian3 qi3 chuang2 pao3 bu4",
        "zhe4 ben3 shu1 fei1 chang2 you3 yi4 si1 ni3 ying1 gai1 kan4 kan4",
        "xiao3 hai2 zi5 men5 zai4 gong1 yuan2 li3 ti1 zu2 qiu2",
        "qing3 wen4 tu2 shu1 guan3 zai4 na3 li3",
        "wo3 men5 de5 lao3 shi1 shi4 yi2 ge4 hen3 you3 qu4 de5 ren2",
    ],
    "es": [
        "El zorro salta sobre el perro perezoso.",
        "Nos vemos mañana en la estación antes de las nueve.",
        "Me gustaría un café con leche y sin azúcar, por favor.",
        "Los niños jugaron al fútbol en el parque hasta que oscureció.",
        "Gire a la izquierda en la próxima esquina.",
        "Este libro es muy interesante, deberías leerlo.",
        "Mi hermana vive en una casa grande cerca del mar.",
        "Hace mucho calor hoy, vamos a la playa.",
    ],
    "de": [
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "Wir sehen uns morgen früh am Bahnhof.",
        "Ich hätte gern eine Tasse Tee mit Milch und ohne Zucker.",
        "Die Kinder spielten im Park Fußball, bis es dunkel wurde.",
        "Biegen Sie an der nächsten Ecke links ab.",
        "Dieses Buch ist sehr spannend, du solltest es lesen.",
        "Meine Schwester wohnt in einem großen Haus am Meer.",
        "Heute ist es sehr heiß, lass uns an den Strand gehen.",
    ],
    "fr": [
        "Le renard brun rapide saute par-dessus le chien paresseux.",
        "On se retrouve demain matin à la gare avant neuf heures.",
        "Je voudrais une tasse de thé avec du lait et sans sucre.",
        "Les enfants ont joué au football dans le parc jusqu'à la nuit.",
        "Tournez à gauche au prochain carrefour.",
        "Ce livre est très intéressant, tu devrais le lire.",
        "Ma sœur habite dans une grande maison près de la mer.",
        "Il fait très chaud aujourd'hui, allons à la plage.",
    ],
    "it": [
        "La volpe veloce salta sopra il cane pigro.",
        "Ci vediamo domani mattina alla stazione prima delle nove.",
        "Vorrei una tazza di tè con latte e senza zucchero.",
        "I bambini hanno giocato a calcio nel parco fino a sera.",
        "Giri a sinistra al prossimo incrocio.",
        "Questo libro è molto interessante, dovresti leggerlo.",
        "Mia sorella abita in una grande casa vicino al mare.",
        "Oggi fa molto caldo, andiamo in spiaggia.",
    ],
    # test-only languages (never tuned on): 4 sentences each
    "pt": ["Nos vemos amanhã de manhã na estação.", "Eu gostaria de um café com leite, por favor.",
           "As crianças jogaram futebol no parque.", "Este livro é muito interessante."],
    "nl": ["We zien elkaar morgenochtend op het station.", "Ik wil graag een kopje thee met melk.",
           "De kinderen speelden voetbal in het park.", "Dit boek is erg interessant."],
    "pl": ["Spotkamy się jutro rano na dworcu.", "Poproszę filiżankę herbaty z mlekiem.",
           "Dzieci grały w piłkę w parku.", "Ta książka jest bardzo ciekawa."],
    "vi": ["Chúng ta sẽ gặp nhau ở nhà ga vào sáng mai.", "Tôi muốn một tách trà với sữa.",
           "Bọn trẻ chơi bóng đá trong công viên.", "Cuốn sách này rất thú vị."],
}
# voices per language: (voice, split) where split None = alternate sentences, "test" = all held out
VOICES: dict[str, list[tuple[str, str | None]]] = {
    "en": [("en-us", None), ("en-gb", None), ("en-gb-scotland", "test"), ("en-us-nyc", "test")],
    "zh": [("cmn-latn-pinyin", None)],
    "es": [("es", None)], "de": [("de", None)], "fr": [("fr-fr", None)], "it": [("it", None)],
    "pt": [("pt", "test")], "nl": [("nl", "test")], "pl": [("pl", "test")], "vi": [("vi", "test")],
}


def main(grid: Path | None) -> None:
    import torch

    from a2v.audio import synthesize_speech
    from a2v.io import write_json_atomic

    torch.set_num_threads(1)
    rows = []
    out = Path(__file__).parent / "results" / "lipsync_langfit.json"

    def add(wav, sr, **meta):
        t0 = time.perf_counter()
        f = english_fit_features(wav, sr)
        rows.append({**meta, **{k: round(v, 4) for k, v in f.items()}, "seconds": round(time.perf_counter() - t0, 2)})
        print(rows[-1], flush=True)
        write_json_atomic(out, {"rows": rows})

    if grid is not None:
        from a2v.recipes.lipsync.inputs import load_speech

        for i, clip in enumerate(sorted(grid.glob("*.mpg"))):
            sp = load_speech(clip)
            add(sp.mono, 16000, lang="en", voice="grid", source=clip.name, split="tune" if i % 2 else "test")
    for lang, voices in VOICES.items():
        for voice, split in voices:
            for i, text in enumerate(SENTENCES[lang]):
                wav = synthesize_speech(text, voice=voice)
                add(wav, 16000, lang=lang, voice=voice, source=text,
                    split=split or ("tune" if i % 2 == 0 else "test"))
    write_json_atomic(out, {"rows": rows, "n": len(rows), "features": "benchmarks/lipsync_langfit.py"})




def pooled(grid: Path | None, ks: tuple[int, ...] = (2, 3, 4)) -> None:
    """Longer speech: up to 6 ``k``-utterance joins (0.3 s pauses) within one voice and split.

    Rows: %V and speech time (:func:`a2v.recipes.lipsync.driven.langfit.vocalic_share` of
    :func:`a2v.encoders.sphinx.phoneme_segments`, as auto mode), ``gain_lm`` of the same phones.
    """
    from itertools import combinations

    import torch

    from a2v.audio import synthesize_speech
    from a2v.encoders.sphinx import phoneme_segments
    from a2v.io import write_json_atomic
    from a2v.recipes.lipsync.driven.langfit import vocalic_share

    torch.set_num_threads(1)
    out = Path(__file__).parent / "results" / "lipsync_langfit_pooled.json"
    gap = np.zeros(int(0.3 * 16000), np.float32)
    lm = _phone_lm()
    rows = []
    groups: dict[tuple[str, str, str], list[np.ndarray]] = {}
    if grid is not None:
        from a2v.recipes.lipsync.inputs import load_speech

        for i, clip in enumerate(sorted(grid.glob("*.mpg"))):
            groups.setdefault(("en", "grid", "tune" if i % 2 else "test"), []).append(load_speech(clip).mono)
    for lang, voices in VOICES.items():
        for voice, split in voices:
            for i, text in enumerate(SENTENCES[lang]):
                sp = split or ("tune" if i % 2 == 0 else "test")
                groups.setdefault((lang, voice, sp), []).append(synthesize_speech(text, voice=voice))
    for k in ks:
        for (lang, voice, sp), wavs in groups.items():
            for combo in list(combinations(range(len(wavs)), min(k, len(wavs))))[:6]:
                wav = np.concatenate([x for j in combo for x in (wavs[j], gap)])  # (S,)
                segs = phoneme_segments(wav, 16000)
                pct_v, speech_s = vocalic_share(segs)
                n_phones = sum(p != "SIL" for p, _, _ in segs)
                rows.append({"k": k, "lang": lang, "voice": voice, "split": sp, "items": list(combo),
                             "duration_s": round(len(wav) / 16000, 2), "speech_s": round(speech_s, 2),
                             "pct_v": round(pct_v, 2), "phones_per_s": round(n_phones / max(speech_s, 1e-9), 3),
                             "gain_lm": round(phonotactic_gain([p for p, _, _ in segs], lm), 4)})
                print(rows[-1], flush=True)
    write_json_atomic(out, {"rows": rows, "rule": evaluate_rule(rows, fit=True)})


def evaluate_rule(rows: list[dict], fit: bool = False) -> dict:
    """Rows with >= MIN_SPEECH_S of recognised speech, judged by the packaged rule (English when
    %V <= MAX_VOCALIC_PCT): correct / count per voice (and rate) of the held-out rows. With
    ``fit``: the threshold of best balanced accuracy on the tuning rows, and a rate-corrected
    alternative (logistic regression of English on %V and phones/s; slope in %V points per
    phone/s, threshold at 11 phones/s) with its held-out counts."""
    from sklearn.linear_model import LogisticRegression

    from a2v.recipes.lipsync.driven.langfit import MAX_VOCALIC_PCT, MIN_SPEECH_S

    judged = [r for r in rows if r["speech_s"] >= MIN_SPEECH_S]
    tune = [r for r in judged if r["split"] == "tune"]

    def held_out(is_english) -> dict[str, list[int]]:
        held: dict[str, list[int]] = {}
        for r in judged:
            if r["split"] == "test":
                c = held.setdefault(r["voice"] + (f"@{r['rate']}wpm" if r.get("rate") else ""), [0, 0])
                c[0] += int(is_english(r) == (r["lang"] == "en"))
                c[1] += 1
        return held

    out: dict = {"max_vocalic_pct": MAX_VOCALIC_PCT, "min_speech_s": MIN_SPEECH_S,
                 "held_out_correct_of": held_out(lambda r: r["pct_v"] <= MAX_VOCALIC_PCT)}
    if fit and tune:
        def balanced(th: float) -> float:
            en = [r["pct_v"] <= th for r in tune if r["lang"] == "en"]
            return (np.mean(en) + np.mean([r["pct_v"] > th for r in tune if r["lang"] != "en"])) / 2

        out["tuned_threshold"] = float(max(sorted({r["pct_v"] for r in tune}), key=balanced))
        x = np.array([[r["pct_v"], r["phones_per_s"]] for r in tune])  # (N,2)
        m = LogisticRegression(class_weight="balanced", C=10.0).fit(x, [r["lang"] == "en" for r in tune])
        (a, b), c = m.coef_[0], float(m.intercept_[0])  # English when a*%V + b*rate + c > 0
        slope, th = float(b / a), float(-(c + b * 11.0) / a)
        out["rate_corrected"] = {"slope": slope, "threshold_at_11_phones_per_s": th, "held_out_correct_of": held_out(
            lambda r: r["pct_v"] + slope * (r["phones_per_s"] - 11.0) <= th)}
    return out


def rates(grid: Path | None) -> None:
    """Speaking rate: every 3-sentence join of each half at 110, 150 and 200 words a minute (first
    voice of each tuned language) and GRID joins of 3 and 4 clips; the packaged rule and a
    rate-corrected one fitted on the tuning half (``evaluate_rule(..., fit=True)``)."""
    from itertools import combinations

    import torch

    from a2v.audio import synthesize_speech
    from a2v.encoders.sphinx import phoneme_segments
    from a2v.io import write_json_atomic
    from a2v.recipes.lipsync.driven.langfit import vocalic_share

    torch.set_num_threads(1)
    gap = np.zeros(int(0.3 * 16000), np.float32)
    rows = []

    def add(wav: np.ndarray, **meta) -> None:
        segs = phoneme_segments(wav, 16000)
        pct_v, speech_s = vocalic_share(segs)
        n = sum(p != "SIL" for p, _, _ in segs)
        rows.append({**meta, "pct_v": round(pct_v, 2), "speech_s": round(speech_s, 2),
                     "phones_per_s": round(n / max(speech_s, 1e-9), 3)})
        print(rows[-1], flush=True)

    if grid is not None:
        from a2v.recipes.lipsync.inputs import load_speech

        halves: dict[str, list[np.ndarray]] = {}
        for i, clip in enumerate(sorted(grid.glob("*.mpg"))):
            halves.setdefault("tune" if i % 2 else "test", []).append(load_speech(clip).mono)
        for k in (3, 4):
            for sp, ws in halves.items():
                for combo in list(combinations(range(len(ws)), k))[:6]:
                    add(np.concatenate([x for j in combo for x in (ws[j], gap)]), rate=0, k=k, lang="en",
                        voice="grid", split=sp, items=list(combo))
    for rate in (110, 150, 200):
        for lang in ("en", "zh", "es", "de", "fr", "it"):
            voice = VOICES[lang][0][0]
            for sp in ("tune", "test"):
                ws = [synthesize_speech(t, voice=voice, rate_wpm=rate)
                      for i, t in enumerate(SENTENCES[lang]) if (i % 2 == 0) == (sp == "tune")]
                for combo in combinations(range(len(ws)), 3):
                    add(np.concatenate([x for j in combo for x in (ws[j], gap)]), rate=rate, k=3, lang=lang,
                        voice=voice, split=sp, items=list(combo))
    write_json_atomic(Path(__file__).parent / "results" / "lipsync_langfit_rates.json",
                      {"rows": rows, "rule": evaluate_rule(rows, fit=True)})


def lw_sweep(grid: Path | None) -> None:
    """``phonotactic_lm``/``gain_lm`` with the phone LM weight 0.5, 1, 4, 8 (2 is in the main table)."""
    import torch

    from a2v.audio import synthesize_speech
    from a2v.encoders.sphinx import _pcm16
    from a2v.io import write_json_atomic

    torch.set_num_threads(1)
    lm = _phone_lm()
    items: list[tuple[dict, np.ndarray]] = []
    if grid is not None:
        from a2v.recipes.lipsync.inputs import load_speech

        for i, clip in enumerate(sorted(grid.glob("*.mpg"))):
            items.append(({"lang": "en", "voice": "grid", "split": "tune" if i % 2 else "test"}, load_speech(clip).mono))
    for lang, voices in VOICES.items():
        for voice, split in voices:
            for i, text in enumerate(SENTENCES[lang]):
                meta = {"lang": lang, "voice": voice, "split": split or ("tune" if i % 2 == 0 else "test")}
                items.append((meta, synthesize_speech(text, voice=voice)))
    rows = []
    for meta, wav in items:
        pcm, _ = _pcm16(wav, 16000)
        row = dict(meta)
        for lw in (0.5, 1.0, 4.0, 8.0):
            phones, _, _ = _phone_decode(pcm, lw)
            row[f"phonotactic_lm_{lw}"] = round(phonotactic_logprob(phones, lm), 4)
            row[f"gain_lm_{lw}"] = round(phonotactic_gain(phones, lm), 4)
        rows.append(row)
    write_json_atomic(Path(__file__).parent / "results" / "lipsync_langfit_lw.json", {"rows": rows})


if __name__ == "__main__":
    _grid = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    main(_grid)
    pooled(_grid)
    rates(_grid)
    lw_sweep(_grid)
