"""Smoke: prepare a synthetic UltraSuite corpus, 2 training steps per cascade stage (A+T, tiny wav2vec2 + BERT),
save/load the pipeline, generate a video with audio; all through the ``a2v tongue`` command line."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from a2v.recipes.tongue.cli import app


def test_cli_help_has_examples() -> None:
    runner = CliRunner()
    for cmd in ("prepare", "train", "generate", "evaluate"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output, cmd


def test_prepare_train_generate(tmp_path, corpus, tiny_w2v, tiny_bert) -> None:
    from a2v.recipes.tongue.cli import prepare
    from a2v.recipes.tongue.data import load_prepared
    from a2v.recipes.tongue.pipeline import TonguePipeline
    from a2v.video import probe

    sets = ["cond.audio_features=ssl", f"cond.audio_encoder={tiny_w2v}", "cond.use_text=true",
            f"cond.text_encoder={tiny_bert}", "data.clip_frames=6", "sampler.steps=2"]
    (corpus / "bad.ult").write_bytes(b"\x00" * 10)  # no .param: reported, not fatal
    prep = tmp_path / "prep"
    prepare([corpus], prep, 1, -1, "configs/tongue/tiny.yaml", sets)  # as `a2v prepare tongue` calls it
    (corpus / "bad.ult").unlink()
    rep = json.loads((prep / "report.json").read_text())
    assert rep == {**rep, "inputs": 5, "written": 4, "dropped": 1, "size_px": 32}
    utts = load_prepared(prep)
    assert len(utts) == 4 and utts[0].frames.shape == (24, 32, 32) and utts[0].text

    runner = CliRunner()
    args = ["-c", "configs/tongue/tiny.yaml"] + [a for s in sets for a in ("--set", s)]
    res = runner.invoke(app, ["train", "-d", str(prep), "-o", str(tmp_path / "run"), "--no-progress", *args])
    assert res.exit_code == 0, res.output
    pipe_dir = tmp_path / "run" / "pipeline"
    assert (pipe_dir / "stage0.safetensors").is_file() and (pipe_dir / "stage1.safetensors").is_file()
    meta = json.loads((tmp_path / "run" / "stage1" / "model.json").read_text())
    assert meta["stage"] == 1 and meta["size_px"] == 32 and meta["text_dim"] == 16

    pipe = TonguePipeline.from_pretrained(pipe_dir)
    wav = utts[0].wav[:4000]  # 0.25 s -> 15 frames: 3 windows of 6 with overlap 4
    video = pipe.generate(wav, "low high", progress=False)
    assert video.shape == (15, 32, 32) and video.dtype == np.uint8

    out = tmp_path / "tongue.mp4"
    res = runner.invoke(app, ["generate", "-m", str(pipe_dir), "-a", str(corpus / "utt000.wav"), "-o", str(out),
                              "--reference", str(corpus / "utt000.ult"), "--no-progress"])
    assert res.exit_code == 0, res.output
    info = probe(out)
    assert info.width == 64 and info.height == 32 and info.has_audio  # side by side with the ground truth
