"""Prepare engine with a model-free extractor: ids, resume, killed runs, workers, bad input, CLI body."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_testutil import FakeExtractor, touch_videos

from a2v.data import (
    discover_items,
    iter_items,
    load_items,
    prepare_dataset,
    read_dropped,
    read_manifest,
    resolve_worker,
    run_prepare_command,
    shard_paths,
)
from a2v.data.prepare import PrepareConfig
from a2v.errors import ConfigError, InputError

NAMES = ["a.mp4", "b.mov", "bad_c.mp4", "sub/d.mkv", "sub/e.mpg", "sub/f.avi", "g.webm"]
CFG = PrepareConfig(shard_max_items=2)


@pytest.fixture()
def videos(tmp_path):
    paths = touch_videos(tmp_path / "in", NAMES)
    (tmp_path / "in" / "notes.txt").write_text("not a video")
    return paths


def _run(src, out, **kw):
    ex = kw.pop("extract", None) or FakeExtractor()
    rep = prepare_dataset([src], out, kw.pop("cfg", CFG), extract=ex, progress=False, **kw)
    return rep, ex


def test_discover_items_ids_sorted_and_stable(videos, tmp_path):
    items = discover_items([tmp_path / "in", videos[0]])  # a file given twice counts once
    assert [i.source for i in items] == sorted(p.resolve() for p in videos)
    ids = {i.source.name: i.id for i in items}
    assert ids["d.mkv"].startswith("sub__d-") and ids["a.mp4"].startswith("a-")
    assert [i.id for i in discover_items([tmp_path / "in"])] == [i.id for i in items]


def test_manifest_shards_and_dropped(videos, tmp_path):
    out = tmp_path / "out"
    rep, ex = _run(tmp_path / "in", out)
    assert len(ex.calls) == 7
    assert (rep["total"], rep["kept"], rep["dropped"], rep["pending"]) == (7, 6, 1, 0)
    assert rep["dropped_by_reason"] == {"no_face": 1}
    rows = read_manifest(out)
    assert len(rows) == 6 and {r["n_frames"] for r in rows} == {5}
    assert len(shard_paths(out)) == 3  # 2 items per shard
    (drop,) = read_dropped(out)
    assert (
        drop["reason"] == "no_face" and drop["source"].endswith("bad_c.mp4") and "frame 0" in drop["detail"]
    )
    items = load_items(out)
    assert sorted(i["__key__"] for i in items) == sorted(r["id"] for r in rows)
    it = items[0]
    assert it["audio.npy"].shape == (5 * 640,) and it["landmarks.npy"].shape == (5, 68, 2)
    assert it["crop.mp4"] == open(next(r["source"] for r in rows if r["id"] == it["__key__"]), "rb").read()
    only = list(iter_items(out, keys=["meta.json"]))
    assert set(only[0]) == {"__key__", "__shard__", "meta.json"}
    assert json.loads((out / "report.json").read_text())["kept"] == 6
    assert not (out / ".work").exists()


def test_shards_read_with_webdataset(videos, tmp_path):
    wds = pytest.importorskip("webdataset")
    _run(tmp_path / "in", tmp_path / "out")
    ds = wds.WebDataset([str(p) for p in shard_paths(tmp_path / "out")], shardshuffle=False).decode()
    samples = list(ds)
    assert (
        len(samples) == 6
        and samples[0]["audio.npy"].shape == (3200,)
        and samples[0]["meta.json"]["n_frames"] == 5
    )


def test_resume_skips_finished_items(videos, tmp_path):
    out = tmp_path / "out"
    _run(tmp_path / "in", out)
    rep, ex = _run(tmp_path / "in", out)
    assert ex.calls == [] and rep["run"]["skipped"] == 7 and rep["kept"] == 6
    touch_videos(tmp_path / "in", ["h.mp4"])  # a new input: only it is processed
    rep, ex = _run(tmp_path / "in", out)
    assert len(ex.calls) == 1 and ex.calls[0].startswith("h-") and rep["kept"] == 7
    assert len(read_manifest(out)) == 7


def test_killed_run_loses_only_the_unfinished_shard(videos, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        # a, b: shard 0 closed; bad_c: dropped; g: in the open shard; killed on sub/d
        _run(tmp_path / "in", out, extract=FakeExtractor(kill_at=5))
    assert len(read_manifest(out)) == 2 and len(shard_paths(out)) == 1
    assert not list((out / "shards").glob("*.tmp"))
    rep, ex = _run(tmp_path / "in", out)
    assert len(ex.calls) == 4 and ex.calls[0].startswith("g-") and rep["kept"] == 6 and rep["pending"] == 0
    keys = [i["__key__"] for i in iter_items(out, keys=["meta.json"])]
    assert len(keys) == len(set(keys)) == 6


def test_orphan_shard_is_removed_and_redone(videos, tmp_path):
    out = tmp_path / "out"
    _run(tmp_path / "in", out)
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    last = json.loads(lines[-1])["shard"]
    manifest.write_text("".join(line + "\n" for line in lines if json.loads(line)["shard"] != last))
    rep, ex = _run(tmp_path / "in", out)  # as if killed between the shard's rename and its manifest lines
    assert rep["run"]["orphan_shards_removed"] == 1 and len(ex.calls) == 2
    keys = [i["__key__"] for i in iter_items(out, keys=["meta.json"])]
    assert len(keys) == len(set(keys)) == 6


def test_two_workers_equal_one_worker(videos, tmp_path, monkeypatch):
    one, _ = _run(tmp_path / "in", tmp_path / "one")
    a, ea = _run(tmp_path / "in", tmp_path / "two", num_shards=2, shard_index=0)
    assert a["pending"] > 0 and a["run"]["items"] == 4
    b, eb = _run(tmp_path / "in", tmp_path / "two", num_shards=2, shard_index=1)
    assert set(ea.calls).isdisjoint(eb.calls) and len(ea.calls) + len(eb.calls) == 7
    assert b["pending"] == 0 and b["kept"] == one["kept"]
    ids = lambda d: sorted(i["__key__"] for i in iter_items(d, keys=["meta.json"]))  # noqa: E731
    assert ids(tmp_path / "two") == ids(tmp_path / "one")
    for rank in (0, 1):  # under accelerate launch / torchrun
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        rep, _ = _run(tmp_path / "in", tmp_path / "env")
        assert rep["run"]["worker"] == rank and rep["run"]["num_shards"] == 2
    assert ids(tmp_path / "env") == ids(tmp_path / "one")
    assert sorted(p.name for p in (tmp_path / "env" / "shards").glob("*.tar"))[0].startswith("00000-")


def test_resolve_worker():
    assert resolve_worker(1, -1, {}) == (1, 0)
    assert resolve_worker(3, 2, {}) == (3, 2)
    assert resolve_worker(1, -1, {"RANK": "3", "WORLD_SIZE": "4"}) == (4, 3)
    assert resolve_worker(1, -1, {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == (2, 1)
    with pytest.raises(ConfigError, match="needs --shard-index"):
        resolve_worker(2, -1, {})
    with pytest.raises(ConfigError, match="must be in 0..1"):
        resolve_worker(2, 2, {})
    with pytest.raises(ConfigError, match="WORLD_SIZE=4"):
        resolve_worker(2, -1, {"RANK": "0", "WORLD_SIZE": "4"})


def test_bad_input_one_line_errors(videos, tmp_path):
    def one_line(exc_type, fn, match):
        with pytest.raises(exc_type, match=match) as e:
            fn()
        assert "\n" not in str(e.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    one_line(InputError, lambda: _run(tmp_path / "nope", tmp_path / "o1"), "input not found")
    one_line(InputError, lambda: _run(empty, tmp_path / "o2"), "no video files in")
    one_line(InputError, lambda: prepare_dataset([], tmp_path / "o3", extract=FakeExtractor()), "no --input")
    one_line(InputError, lambda: _run(tmp_path / "in", videos[0]), "is a file")
    one_line(InputError, lambda: _run(tmp_path / "in", empty), "holds other files")
    _run(tmp_path / "in", tmp_path / "out")
    other = PrepareConfig(shard_max_items=2, min_face_px=80)
    one_line(ConfigError, lambda: _run(tmp_path / "in", tmp_path / "out", cfg=other), "min_face_px=200.0")
    rep, _ = _run(
        tmp_path / "in", tmp_path / "out", cfg=PrepareConfig(shard_max_items=9)
    )  # runtime-only change
    assert rep["run"]["skipped"] == 7
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_unexpected_error_is_recorded_or_raised(tmp_path):
    touch_videos(tmp_path / "in", ["a.mp4", "b.mp4"])

    def broken(source, item_id, work_dir):
        raise ZeroDivisionError("division by zero")

    rep = prepare_dataset([tmp_path / "in"], tmp_path / "out", extract=broken, progress=False)
    assert rep["dropped_by_reason"] == {"error": 2}
    assert read_dropped(tmp_path / "out")[0]["detail"] == "ZeroDivisionError: division by zero"
    with pytest.raises(ZeroDivisionError):
        prepare_dataset(
            [tmp_path / "in"],
            tmp_path / "o2",
            PrepareConfig(on_error="raise"),
            extract=broken,
            progress=False,
        )
    assert not (tmp_path / "o2" / "manifest.jsonl").exists()


def test_resume_retries_unexpected_errors_only(videos, tmp_path):
    out = tmp_path / "out"
    fails = {"a.mp4"}
    ex = FakeExtractor()

    def flaky(source, item_id, work_dir):  # a passing fault on one file, a real drop on bad_c
        if source.name in fails:
            ex.calls.append(item_id)
            raise MemoryError("out of memory")
        return ex(source, item_id, work_dir)

    rep = prepare_dataset([tmp_path / "in"], out, CFG, extract=flaky, progress=False)
    assert rep["dropped_by_reason"] == {"error": 1, "no_face": 1} and rep["kept"] == 5
    fails.clear()
    ex.calls.clear()
    rep = prepare_dataset([tmp_path / "in"], out, CFG, extract=flaky, progress=False)
    assert len(ex.calls) == 1 and ex.calls[0].startswith("a-")  # bad_c (no_face) is not redone
    assert rep["run"]["retried_errors"] == 1 and rep["kept"] == 6 and rep["dropped_by_reason"] == {"no_face": 1}
    assert [r["reason"] for r in read_dropped(out)] == ["no_face"]
    assert len(read_manifest(out)) == 6


def test_run_prepare_command(videos, tmp_path):
    from a2v.cliutil import console

    cfg = tmp_path / "lipsync.yaml"
    cfg.write_text("model:\n  width: 3\nprepare:\n  fps: 30\n  shard_max_items: 4\n")
    out = tmp_path / "out"
    with console.capture() as cap:
        rep = run_prepare_command(
            "lipsync",
            [tmp_path / "in"],
            out,
            1,
            -1,
            cfg,
            ["prepare.min_face_px=120"],
            extract=FakeExtractor(),
            progress=False,
        )
    printed = cap.get()
    assert "kept 6, dropped 1" in printed and "no_face: 1" in printed and "dropped.jsonl" in printed
    saved = json.loads((out / "prepare_config.json").read_text())
    assert (saved["fps"], saved["shard_max_items"], saved["min_face_px"]) == (30.0, 4, 120.0)
    assert rep["kept"] == 6 and len(shard_paths(out)) == 2
    with pytest.raises(ConfigError, match="unknown config key"):
        run_prepare_command(
            "lipsync",
            [tmp_path / "in"],
            tmp_path / "o2",
            set_=["min_face=1"],
            extract=FakeExtractor(),
            progress=False,
        )
    assert np.isclose(read_manifest(out)[0]["duration_s"], 0.2)
