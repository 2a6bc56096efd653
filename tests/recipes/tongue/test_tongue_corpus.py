"""Real-corpus layouts: UltraSuite/TaL reuse file names in every speaker folder, ship lip videos and
stray .wav/.param files; items keep their relative paths and the split can be speaker-disjoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from a2v.errors import ConfigError, InputError
from a2v.recipes.tongue.config import DataConfig
from a2v.recipes.tongue.data import load_prepared, prepare_folder, scan_inputs, speaker_of, split_names
from a2v.recipes.tongue.synthetic import make_synthetic_corpus


def _speakers(root: Path, speakers: list[str], n: int = 1, seed: int = 0) -> Path:
    """One folder per speaker, each with utt000..: the same stems in every folder, as in UltraSuite/TaL."""
    for i, spk in enumerate(speakers):
        make_synthetic_corpus(root / spk, n_utterances=n, seconds=0.2, fps=60.0, seed=seed + i)
    return root


def test_same_stem_in_two_speaker_folders_gives_two_items(tmp_path) -> None:
    src = _speakers(tmp_path / "core", ["01M", "02F"])
    rep = prepare_folder([src], tmp_path / "prep", DataConfig(), 16, progress=False)
    assert rep["inputs"] == 2 and rep["written"] == 2 and rep["speakers"] == 2
    utts = load_prepared(tmp_path / "prep")
    assert [u.name for u in utts] == ["01M/utt000", "02F/utt000"]
    assert [u.speaker for u in utts] == ["01M", "02F"]
    assert not np.array_equal(utts[0].frames, utts[1].frames)  # two recordings, not one overwritten
    manifest = [json.loads(s) for s in (tmp_path / "prep" / "manifest.jsonl").read_text().splitlines()]
    assert [m["speaker"] for m in manifest] == ["01M", "02F"]
    assert load_prepared(tmp_path / "prep", names=["02F/utt000"])[0].name == "02F/utt000"


def test_two_input_folders_are_prefixed_and_a_clash_is_an_error(tmp_path) -> None:
    a = make_synthetic_corpus(tmp_path / "a", 1, 0.2)[0].parent
    b = make_synthetic_corpus(tmp_path / "b", 1, 0.2)[0].parent
    items, _ = scan_inputs([a, b])
    assert [n for _, n in items] == ["a/utt000", "b/utt000"]
    with pytest.raises(InputError, match="same item name 'utt000'"):
        scan_inputs([a / "utt000.ult", b / "utt000.ult"])


def test_speaker_split_is_disjoint_and_follows_settings() -> None:
    names = [f"{s:02d}/utt{u:03d}" for s in range(44) for u in range(3)]
    train, test = split_names(names, DataConfig(split_by="speaker", holdout_speakers=4))
    assert {speaker_of(n) for n in test} == {"40", "41", "42", "43"}
    assert len({speaker_of(n) for n in train}) == 40 and not {speaker_of(n) for n in train} & {"40", "41"}
    assert sorted(train + test) == sorted(names)
    _, test = split_names(names, DataConfig(split_by="speaker", test_speakers=("03", "07")))
    assert {speaker_of(n) for n in test} == {"03", "07"} and len(test) == 6
    # the utterance split takes utterances of the same speakers: the case the speaker split avoids
    train_u, test_u = split_names(names, DataConfig(holdout_fraction=0.05))
    assert {speaker_of(n) for n in test_u} & {speaker_of(n) for n in train_u}
    with pytest.raises(InputError, match="not in the data"):
        split_names(names, DataConfig(split_by="speaker", test_speakers=("99",)))
    with pytest.raises(InputError, match="one folder per speaker"):
        split_names(["a", "b"], DataConfig(split_by="speaker"))


def test_prepare_cli_split_by_speaker_writes_split_json(tmp_path) -> None:
    from typer.testing import CliRunner

    from a2v.recipes.tongue.cli import app

    src = _speakers(tmp_path / "core", ["01M", "02F", "03M"], n=2)
    res = CliRunner().invoke(app, ["prepare", "-i", str(src), "-o", str(tmp_path / "prep"), "--split-by", "speaker",
                                   "-c", "configs/tongue/tiny.yaml", "--set", "data.holdout_speakers=1"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "prepared 6 of 6 recordings (3 speakers)" in out and "speaker split: 4 train / 2 test" in out
    split = json.loads((tmp_path / "prep" / "split.json").read_text())
    assert split["by"] == "speaker" and split["test"] == ["03M/utt000", "03M/utt001"] and len(split["train"]) == 4


def test_recognises_ultrasuite_files_and_lists_the_rest(tmp_path) -> None:
    src = _speakers(tmp_path / "core", ["01M"], n=2)
    spk = src / "01M"
    (spk / "utt000_lips.mp4").write_bytes(b"lip video")  # TaL lip camera: never ultrasound
    (spk / "render.mp4").write_bytes(b"composite")  # a video beside .ult recordings
    shutil.copy(spk / "utt001.wav", spk / "orphan.wav")  # audio without its .ult
    (spk / "lonely.param").write_text("NumVectors=2\n")
    items, skipped = scan_inputs([src])
    assert [n for _, n in items] == ["01M/utt000", "01M/utt001"]
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert set(reasons) == {"utt000_lips.mp4", "render.mp4", "orphan.wav", "lonely.param"}
    assert "lip video" in reasons["utt000_lips.mp4"] and "no orphan.ult" in reasons["orphan.wav"]
    assert "data.videos=ultrasound" in reasons["render.mp4"]
    rep = prepare_folder([src], tmp_path / "prep", DataConfig(), 16, progress=False)
    assert rep == {**rep, "inputs": 2, "written": 2, "skipped": 4}
    listed = [json.loads(s)["path"] for s in (tmp_path / "prep" / "skipped.jsonl").read_text().splitlines()]
    assert sorted(Path(p).name for p in listed) == sorted(reasons)
    # data.videos=ultrasound takes the render; lip videos only then too
    items, _ = scan_inputs([src], videos="ultrasound")
    assert {n for _, n in items} >= {"01M/render", "01M/utt000_lips"}


def test_video_crop_cuts_the_panel(tmp_path) -> None:
    from a2v.recipes.tongue.data import load_utterance
    from a2v.video import write_video

    frames = np.zeros((12, 48, 64), np.uint8)  # (F,H,W): ultrasound panel at x 32..63, y 8..39
    frames[:, 8:40, 32:64] = 200
    path = tmp_path / "composite.mp4"
    wav = np.zeros(3200, np.float32)
    write_video(path, (np.repeat(f[..., None], 3, 2) for f in frames), 60.0, audio=wav, audio_sr=16000)
    u = load_utterance(path, DataConfig(video_crop_px=(32, 8, 32, 32)))
    assert u.frames.shape[1:] == (32, 32) and u.frames[:, 4:-4, 4:-4].min() > 180
    with pytest.raises(InputError, match="leaves the 64x48 frame"):
        load_utterance(path, DataConfig(video_crop_px=(40, 0, 32, 32)))
    with pytest.raises(ConfigError, match="video_crop_px"):
        DataConfig(video_crop_px=(1, 2, 3))


def test_shared_prepare_command_takes_split_by(tmp_path, capsys) -> None:
    """``a2v prepare tongue --split-by speaker`` is ``a2v tongue prepare --split-by speaker``; other recipes refuse it."""
    from a2v.cli import main

    src = _speakers(tmp_path / "core", ["01M", "02F", "03M"], n=1)
    assert main(["prepare", "tongue", "-i", str(src), "-o", str(tmp_path / "prep"), "--split-by", "speaker",
                 "-c", "configs/tongue/tiny.yaml", "--set", "data.holdout_speakers=1"]) == 0
    split = json.loads((tmp_path / "prep" / "split.json").read_text())
    assert split["by"] == "speaker" and split["test"] == ["03M/utt000"]
    capsys.readouterr()
    assert main(["prepare", "talk", "-i", str(src), "-o", str(tmp_path / "t"), "--split-by", "speaker"]) == 2
    assert capsys.readouterr().err.strip() == "error: --split-by is not an option of 'a2v prepare talk' (only of tongue)"
    assert not (tmp_path / "t").exists()


def test_prepare_that_keeps_nothing_exits_2(tmp_path, capsys) -> None:
    """Every recording dropped (here a bad .param) is not a success: exit 2, the reasons stay in dropped.jsonl."""
    from a2v.cli import main

    src = _speakers(tmp_path / "core", ["01M"], n=1)
    (src / "01M" / "utt000.param").write_text("NumVectors=abc\n")
    assert main(["prepare", "tongue", "-i", str(src), "-o", str(tmp_path / "prep"), "-c", "configs/tongue/tiny.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith("error: no recording could be prepared: all 1 were dropped")
    assert "NumVectors" in (tmp_path / "prep" / "dropped.jsonl").read_text()
