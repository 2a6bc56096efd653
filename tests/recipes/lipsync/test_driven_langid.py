"""Auto mode with a Whisper language identifier (--langid-model): Whisper's language decides, unsure -> %V rule.

The Whisper folders are tiny and pinned to one language (a2v.tiny_models.pin_language), so the
answer is known: the tests check the wiring, not Whisper's accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from a2v.recipes.lipsync.driven.langid import MIN_LANGID_PROB, lipsync_language, speech_language
from a2v.recipes.lipsync.driven.params import mouth_parameters

SR, FPS = 16000, 25.0


@pytest.fixture(scope="module")
def whispers(tmp_path_factory) -> dict[str, Path]:
    """Tiny Whisper folders pinned to zh and en (p 0.995) and to zh with p 0.069 (logit 2 over 100 languages)."""
    from a2v.tiny_models import write_tiny_model

    root = tmp_path_factory.mktemp("whisper")
    return {"zh": write_tiny_model("whisper", root / "zh", language="zh"),
            "en": write_tiny_model("whisper", root / "en", language="en"),
            "unsure": write_tiny_model("whisper", root / "unsure", language="zh", language_logit=2.0)}


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    pytest.importorskip("pocketsphinx")
    from a2v.audio import synthesize_speech
    from a2v.errors import MissingDependencyError

    try:
        return synthesize_speech("Hello, I am a talking photo.", sr=SR)
    except MissingDependencyError as e:
        pytest.skip(str(e))


def _params(wav: np.ndarray, lid: dict | None, language: str = "auto"):
    n = round(len(wav) / SR * FPS)
    return mouth_parameters(wav, SR, FPS, n, mode="auto", language=language, language_id=lid)


def test_language_codes_map_to_the_lipsync_list():
    assert [lipsync_language(c) for c in ("en", "zh", "yue", "de", "haw", "auto")] == \
        ["en", "zh", "yue", "de", "other", "other"]


def test_whisper_zh_sends_english_speech_to_the_envelope(english, whispers):
    lid = speech_language(english, SR, whispers["zh"])
    assert lid["code"] == "zh" and lid["language"] == "zh" and lid["confident"] and lid["prob"] > 0.99
    assert [t["code"] for t in lid["top3"]][0] == "zh" and sum(t["prob"] for t in lid["top3"]) <= 1
    op, sp, info = _params(english, lid)
    assert info["mode"] == "envelope" and not sp.any() and op.shape == (round(len(english) / SR * FPS),)
    assert "Whisper identifies zh" in info["mode_reason"] and "--language en" in info["mode_reason"]
    assert info["language_id"] == lid and "english_fit" not in info  # the %V rule did not run


def test_whisper_en_keeps_english_phones_on_the_same_speech(english, whispers):
    lid = speech_language(english, SR, whispers["en"])
    _, sp, info = _params(english, lid)
    assert info["mode"] == "phoneme+envelope" and sp.std() > 0.05
    assert info["mode_reason"].startswith("Whisper identifies en") and "english_fit" not in info
    _, _, plain = _params(english, None)  # the %V rule on 2 s of speech: too short to tell
    assert plain["english_fit"]["verdict"] == "too short to tell" and "language_id" not in plain


def test_unsure_whisper_falls_back_to_the_vowel_share_rule(english, whispers):
    lid = speech_language(english, SR, whispers["unsure"])
    assert lid["code"] == "zh" and lid["prob"] == pytest.approx(np.exp(2) / (np.exp(2) + 99), abs=1e-3)
    assert lid["prob"] < MIN_LANGID_PROB and not lid["confident"]
    _, _, info = _params(english, lid)
    _, _, plain = _params(english, None)
    assert info["mode"] == plain["mode"] and info["english_fit"] == plain["english_fit"]  # %V decided
    assert "Whisper unsure (zh p=0.07 < 0.5)" in info["mode_reason"] and info["language_id"] == lid


def test_a_given_language_is_not_overruled(english, whispers):
    from a2v.recipes.lipsync.driven.generate import _langid_skipped

    lid = speech_language(english, SR, whispers["zh"])
    _, _, info = _params(english, lid, language="en")
    assert info["mode"] == "phoneme+envelope" and "language_id" not in info
    assert _langid_skipped("auto", "auto", None) == ""
    assert "language 'de'" in _langid_skipped("auto", "de", None)
    assert "transcript" in _langid_skipped("auto", "auto", "hello") and "mode" in _langid_skipped("envelope", "auto", None)


def _photo(tmp_path: Path) -> Path:
    pytest.importorskip("skimage")
    from skimage import data
    from skimage.transform import resize

    from a2v.video import write_png

    return write_png(tmp_path / "face.png", (resize(data.astronaut(), (256, 256)) * 255).astype(np.uint8))


def test_cli_generate_and_evaluate_report_whisper(english, whispers, tmp_path, capsys):
    from a2v.audio import save_audio
    from a2v.cli import main

    wav = save_audio(tmp_path / "en.wav", english, SR)
    out = tmp_path / "out.mp4"
    args = ["lipsync", "generate", "--face", str(_photo(tmp_path)), "--audio", str(wav), "-o", str(out),
            "--fps", "5", "--no-progress", "--device", "cpu", "--langid-model", str(whispers["zh"])]
    assert main(args) == 0
    cap = capsys.readouterr()
    report = json.loads(cap.out)
    lid = report["language_id"]
    assert report["mode"] == "envelope" and "Whisper identifies zh" in report["mode_reason"]
    assert lid["model"] == str(whispers["zh"]) and lid["code"] == "zh" and lid["prob"] > 0.99
    assert [t["code"] for t in lid["top3"]][0] == "zh" and len(lid["top3"]) == 3
    notes = [ln for ln in cap.err.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "envelope mode" in notes[0] and "Whisper identifies zh" in notes[0], cap.err
    assert "--langid-model" not in notes[0]
    assert main(["lipsync", "evaluate", "--video", str(out), "--no-progress", "--device", "cpu",
                 "--langid-model", str(whispers["en"])]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["model"]["language_id"]["code"] == "en" and "av_sync_conf" in rows["model"]


def test_cli_bad_langid_model_is_one_line_before_any_work(english, whispers, tmp_path, capsys):
    from a2v.audio import save_audio
    from a2v.cli import main

    wav = save_audio(tmp_path / "en.wav", english, SR)
    photo = _photo(tmp_path)
    out = tmp_path / "out.mp4"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((whispers["zh"] / "config.json").read_text())
    base = ["lipsync", "generate", "--face", str(photo), "--audio", str(wav), "-o", str(out), "--no-progress"]
    for model, msg in ((tmp_path / "missing", "does not exist"), (bare, "no weight file")):
        assert main([*base, "--langid-model", str(model)]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and str(model) in err and len(err.splitlines()) == 1 and "Traceback" not in err
    fitted = tmp_path / "fitted"
    fitted.mkdir()
    (fitted / "pipeline.json").write_text("{}")
    assert main([*base, "--model", str(fitted), "--langid-model", str(whispers["zh"])]) == 2
    assert "no-training path" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.mp4*"))
    assert main(["lipsync", "evaluate", "--video", str(out), "--langid-model", str(bare)]) == 2
    assert "no weight file" in capsys.readouterr().err
    assert main(["lipsync", "evaluate", str(tmp_path), "--langid-model", str(whispers["zh"])]) == 2
    assert "--video" in capsys.readouterr().err
