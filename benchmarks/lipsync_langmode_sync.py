"""Do English phones still drive a usable mouth on speech that is not English? Sync of both modes.

For eSpeak NG speech in English (en-us), German, Mandarin (``cmn-latn-pinyin``), Spanish and
French (two groups of three sentences of ``benchmarks/lipsync_langfit.py`` each, 7-11 s), the
no-training path animates the astronaut photo twice: with English phone timing (``--language en``)
and with the syllable envelope (``--language <code>``); ``auto`` is run too, to record its choice.
Each video is measured by ``a2v lipsync evaluate --video`` (landmark audio-visual sync fitted on
GRID, ``a2v.metrics.av_sync``): confidence and best offset with its own speech, and, as chance,
the confidence of the phone-mode video against the other group's speech of the same voice.
All through the CLI, as a user runs it. CPU.

Usage: .venv/bin/python benchmarks/lipsync_langmode_sync.py
  -> benchmarks/results/lipsync_langmode_sync.json
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
A2V = [sys.executable, "-m", "a2v.cli"]
LANGS = {"en": "en-us", "de": "de", "zh": "cmn-latn-pinyin", "es": "es", "fr": "fr-fr"}


def _sentences() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("langfit", REPO / "benchmarks" / "lipsync_langfit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SENTENCES


def _json(cmd: list[str]) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])}: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout)


def _sync(video: Path, audio: Path | None = None) -> dict:
    cmd = [*A2V, "lipsync", "evaluate", "--video", str(video), "--no-progress"]
    if audio is not None:
        cmd += ["--audio", str(audio)]
    m = _json(cmd)["model"]
    return {k: m[k] for k in ("av_sync_conf", "av_sync_corr", "av_offset_frames", "av_offset_at_edge")}


def main() -> None:
    from skimage import data
    from skimage.transform import resize

    from a2v.audio import save_audio, synthesize_speech
    from a2v.io import write_json_atomic
    from a2v.video import write_png

    sents = _sentences()
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        face = root / "face.png"
        write_png(face, (resize(data.astronaut(), (256, 256), anti_aliasing=True) * 255).astype(np.uint8))
        for lang, voice in LANGS.items():
            wavs = []
            for g in range(2):
                text = " ".join(sents[lang][3 * g:3 * g + 3])
                wav = root / f"{lang}{g}.wav"
                save_audio(wav, synthesize_speech(text, voice=voice), 16000)
                wavs.append(wav)
            for g, wav in enumerate(wavs):
                for mode, code in (("phones", "en"), ("envelope", lang if lang != "en" else "other"), ("auto", "auto")):
                    out = root / f"{lang}{g}_{mode}.mp4"
                    rep = _json([*A2V, "lipsync", "generate", "--face", str(face), "--audio", str(wav), "-o", str(out),
                                 "--language", code, "--no-progress"])
                    row = {"language": lang, "voice": voice, "group": g, "mode": mode, "used": rep.get("mode"),
                           "speech_s": round(float(rep.get("duration_s", 0.0) or 0.0), 2),
                           "mode_reason": rep.get("mode_reason"), **_sync(out)}
                    if mode == "phones":
                        row["chance_conf"] = _sync(out, wavs[1 - g])["av_sync_conf"]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = {}
    for lang in LANGS:
        for mode in ("phones", "envelope"):
            r = [x for x in rows if x["language"] == lang and x["mode"] == mode]
            summary[f"{lang}/{mode}"] = round(float(np.mean([x["av_sync_conf"] for x in r])), 3)
        summary[f"{lang}/chance"] = round(float(np.mean([x["chance_conf"] for x in rows
                                                        if x["language"] == lang and "chance_conf" in x])), 3)
    out = {"task": __doc__.split("\n\n")[1].strip(), "summary_mean_conf": summary, "rows": rows,
           "seconds": round(time.time() - t0, 1)}
    write_json_atomic(REPO / "benchmarks" / "results" / "lipsync_langmode_sync.json", out)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
