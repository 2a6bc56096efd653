"""Does the English phone recogniser fit the speech? Features on English vs other languages.

Speech: the GRID clips (real English) and eSpeak NG voices (English en-us/en-gb; Mandarin
``cmn-latn-pinyin`` with pinyin text, Spanish, German, French, Italian; held-out voices and
languages only in the test half). Sentences alternate between a tuning half and a held-out half.
Features: :func:`a2v.recipes.lipsync.driven.langfit.english_fit_features`.

Usage: .venv/bin/python benchmarks/lipsync_langfit.py [GRID_DIR]
  -> benchmarks/results/lipsync_langfit.json (one row per utterance)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


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
    from a2v.recipes.lipsync.driven.langfit import english_fit_features

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
    write_json_atomic(out, {"rows": rows, "n": len(rows), "features": "a2v.recipes.lipsync.driven.langfit"})


if __name__ == "__main__":
    _grid = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    main(_grid)
    pooled(_grid)



def pooled(grid: Path | None, k: int = 3) -> None:
    """Longer speech: every ``k``-sentence concatenation (0.3 s pauses) within one voice and split."""
    from itertools import combinations

    import numpy as np
    import torch

    from a2v.audio import synthesize_speech
    from a2v.io import write_json_atomic
    from a2v.recipes.lipsync.driven.langfit import _phone_decode, phonotactic_gain, phonotactic_logprob
    from a2v.encoders.sphinx import _pcm16

    torch.set_num_threads(1)
    out = Path(__file__).parent / "results" / "lipsync_langfit_pooled.json"
    gap = np.zeros(int(0.3 * 16000), np.float32)
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
    for (lang, voice, sp), wavs in groups.items():
        for combo in list(combinations(range(len(wavs)), min(k, len(wavs))))[:6]:
            wav = np.concatenate([x for j in combo for x in (wavs[j], gap)])  # (S,)
            pcm, _ = _pcm16(wav, 16000)
            phones, _, _ = _phone_decode(pcm, 2.0)
            rows.append({"lang": lang, "voice": voice, "split": sp, "items": list(combo),
                         "duration_s": round(len(wav) / 16000, 2),
                         "phonotactic_lm": round(phonotactic_logprob(phones), 4),
                         "gain_lm": round(phonotactic_gain(phones), 4)})
            print(rows[-1], flush=True)
    write_json_atomic(out, {"rows": rows, "k": k})
