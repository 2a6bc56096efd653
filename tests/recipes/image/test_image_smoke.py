"""Smoke test of the recipe on the tiny config: prepare, 2 training steps, generate, evaluate (CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_testutil import tone
from typer.testing import CliRunner

from a2v.recipes.image.cli import app, prepare

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "image" / "tiny.yaml"


def _write_inputs(root: Path) -> Path:
    """Two class folders of (tone .wav, coloured .png) pairs, one video with sound, one audio without a picture."""
    from a2v.audio import save_audio
    from a2v.video import write_png, write_video

    src = root / "inputs"
    for c, (label, base) in enumerate((("bell", 300.0), ("drum", 900.0))):
        for k in range(3):
            save_audio(src / label / f"{label}{k}.wav", tone(base * (1 + 0.1 * k), 1.0, seed=k), 16000)
            img = np.zeros((40, 48, 3), np.uint8)
            img[..., c] = 60 + 60 * k
            write_png(src / label / f"{label}{k}.png", img)
    frames = [np.full((36, 48, 3), 20 * i, np.uint8) for i in range(8)]
    write_video(src / "bell" / "clip.mp4", frames, 8.0, audio=tone(350.0, 1.0))
    save_audio(src / "drum" / "lonely.wav", tone(700.0, 0.5), 16000)  # no image beside it: dropped
    return src


def test_cli_help_has_examples():
    runner = CliRunner()
    for cmd in ([], ["train"], ["generate"], ["evaluate"], ["score-study"], ["detect-boxes"], ["convert-vqgan"],
                ["convert-wav2clip"], ["import-wav2clip"]):
        res = runner.invoke(app, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output, cmd
    assert "Example:" in prepare.__doc__


def test_prepare_train_generate_evaluate(tmp_path, wavlm_dir, clip_vision_dir):
    src = _write_inputs(tmp_path)
    data = tmp_path / "data"
    prepare([src], data, config=CONFIG, set_=["data.val_fraction=0"], progress=False)
    report = json.loads((data / "report.json").read_text())
    assert (report["inputs"], report["pairs"], report["dropped"]) == (8, 7, 1)
    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} == {"bell", "drum"}
    with np.load(data / "pairs" / f"{rows[0]['id']}.npz") as z:
        assert z["image"].shape == (32, 32, 3) and z["audio"].dtype == np.float32
    assert "lonely.wav" in (data / "dropped.jsonl").read_text()

    runner = CliRunner()
    sets = ["-s", f"audio.encoder={wavlm_dir}", "-s", "tower.kind=hf_clip", "-s", f"tower.name={clip_vision_dir}",
            "-s", "train.max_steps=2", "-s", "train.eval_every=0"]
    res = runner.invoke(app, ["train", "-d", str(data), "-o", str(tmp_path / "run"), "-c", str(CONFIG), *sets,
                              "--no-progress"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    pipe_dir = tmp_path / "run" / "pipeline"
    assert (pipe_dir / "audio_head.safetensors").is_file()
    assert list((data / "cache").glob("image_emb_*.safetensors"))  # the frozen tower's embeddings are cached

    out = tmp_path / "bell.png"
    res = runner.invoke(app, ["generate", "-m", str(pipe_dir), "-a", str(src / "bell" / "bell0.wav"), "-o", str(out),
                              "--steps", "2", "--no-progress"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    from a2v.video import load_image

    assert load_image(out).shape == (32, 32, 3)

    res = runner.invoke(app, ["evaluate", "-m", str(pipe_dir), "-d", str(data), "-o", str(tmp_path / "eval"),
                              "--split", "all", "-s", "eval.generate_steps=2", "--no-progress"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["num_pairs"] == 7 and 0 <= m["r@1"] <= m["r@2"] <= m["r@5"] <= 1 and 1 <= m["median_rank"] <= 7
    assert m["two_afc_trials"] == 2 and 0 <= m["two_afc_accuracy"] <= 1
    assert m["two_afc_guide"].startswith("hf_clip:") and m["two_afc_judge"].startswith("tiny:")  # labelled, distinct
    assert "zero_shot_accuracy" not in m  # a vision-only tower has no text side
    page = (tmp_path / "eval" / "study" / "index.html").read_text()
    assert page.count("<audio") == 4 and page.count("<img") == 8 and page.count('value="0"> neither') == 4


def test_bad_inputs_are_one_line_errors(tmp_path):
    from a2v.errors import InputError

    with pytest.raises(InputError, match="not found"):
        prepare([tmp_path / "missing"], tmp_path / "out", config=CONFIG)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no video or audio"):
        prepare([empty], tmp_path / "out", config=CONFIG)
    res = CliRunner().invoke(app, ["train", "-d", str(empty), "-o", str(tmp_path / "r"), "-c", str(CONFIG),
                                   "-s", "tower.kind=tiny"])
    assert res.exit_code != 0
