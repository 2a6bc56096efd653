"""`a2v prepare <recipe>` through the command line: the shared engine, its report and one-line errors.
Inputs here are all dropped before any model is built (corrupt file, no audio track)."""

from __future__ import annotations

import json

from data_testutil import make_clip

from a2v.cli import main


def test_cli_prepare_reports_dropped_items(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"not a video at all" * 20)
    make_clip(src / "silent.mp4", n_frames=30, audio=False)
    out = tmp_path / "ds"
    assert main(["prepare", "talk", "-i", str(src), "-o", str(out), "--set", "min_face_px=64"]) == 0
    err = capsys.readouterr().err
    assert (
        "items 2: kept 0, dropped 2" in err and "dropped corrupt: 1" in err and "dropped no_audio: 1" in err
    )
    rows = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in rows) == ["corrupt", "no_audio"]
    assert json.loads((out / "prepare_config.json").read_text())["min_face_px"] == 64.0
    assert json.loads((out / "report.json").read_text())["dropped"] == 2
    # the same folder with another data setting: one line, exit status 2
    assert main(["prepare", "talk", "-i", str(src), "-o", str(out), "--set", "min_face_px=100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "min_face_px=64.0" in err and "\n" not in err


def test_cli_prepare_bad_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for inp, msg in ((tmp_path / "missing", "input not found"), (empty, "no video files in")):
        assert main(["prepare", "talk", "-i", str(inp), "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and msg in err and "\n" not in err
    assert not (tmp_path / "o").exists()
