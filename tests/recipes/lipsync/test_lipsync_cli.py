"""``a2v lipsync`` commands end to end on tiny inputs: train + evaluate (Table 1), generate with the
no-training path, sync evaluation of the output, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lipsync_testutil import synthetic_item, write_dataset

from a2v.cli import main


def test_train_then_evaluate_prints_table1(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", [synthetic_item(f"s{i}", 60, seed=i) for i in range(4)])
    run = tmp_path / "run"
    sets = ["--set", "train.max_steps=3", "--set", "train.eval_every=0", "--set", "train.log_every=3"]
    assert main(["lipsync", "train", "-d", str(data), "-o", str(run), "--models", "tcn,lstm", "--preset", "tiny",
                 *sets]) == 0
    assert (run / "tcn" / "pipeline.json").is_file() and (run / "lstm" / "pipeline.json").is_file()
    capsys.readouterr()
    assert main(["lipsync", "evaluate", str(run), "-o", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr()
    table = out.err.lower()
    assert "| model | mse | mae | inter-frame mse |" in table and "tcn" in table and "lstm" in table
    assert {"tcn", "lstm", "mean_mouth"} <= set(json.loads(out.out)["table1"])  # stdout: one JSON object


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["lipsync", "train", "-d", str(tmp_path), "-o", str(tmp_path / "r"), "--stage", "renderer"]) == 2
    assert main(["lipsync", "train", "-d", str(tmp_path), "-o", str(tmp_path / "r"), "--models", "gru"]) == 2
    assert main(["lipsync", "generate", "--audio", str(tmp_path / "a.wav")]) == 2
    assert main(["lipsync", "evaluate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)


def test_generate_from_a_photo_and_measure_its_sync(tmp_path, capsys):
    from skimage import data
    from skimage.transform import resize

    from a2v.audio import save_audio, synthesize_speech
    from a2v.video import probe, write_png

    photo = write_png(tmp_path / "face.png", (resize(data.astronaut(), (256, 256)) * 255).astype(np.uint8))
    wav = save_audio(tmp_path / "speech.wav", synthesize_speech("Bob will pay me back."), 16000)
    out = tmp_path / "out.mp4"
    assert main(["lipsync", "generate", "--face", str(photo), "--audio", str(wav), "-o", str(out),
                 "--mode", "envelope", "--no-progress", "--device", "cpu"]) == 0
    info = probe(out)
    assert info.has_audio and info.fps == pytest.approx(25.0) and info.num_frames > 20
    assert main(["lipsync", "evaluate", "--video", str(out), "-o", str(tmp_path / "sync.json")]) == 0
    rows = json.loads((tmp_path / "sync.json").read_text())
    assert rows["model"]["sync_corr"] > 0.3  # driven mouth follows loudness (demo/GRID tests justify 0.5 on longer speech)
