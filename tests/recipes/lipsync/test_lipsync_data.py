"""Stage 1 data: prepared-dataset reading, split, per-speaker normalised mouth PCA, windows, videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lipsync_testutil import synthetic_item, write_dataset

from a2v.errors import InputError
from a2v.face.mouth import normalize_mouth
from a2v.recipes.lipsync.config import LipSyncDataConfig
from a2v.recipes.lipsync.data import (
    LipSyncItem,
    MouthFeatures,
    WindowDataset,
    load_items,
    read_items,
    split_items,
)


def test_read_items_round_trip(tmp_path):
    items = [synthetic_item(f"c{i}", 30 + i, seed=i, speaker=f"spk{i % 2}") for i in range(3)]
    root = write_dataset(tmp_path, items)
    got = read_items(root)
    assert [g.id for g in got] == ["c0", "c1", "c2"] and [g.speaker for g in got] == ["c0", "c1", "c2"]
    for a, b in zip(items, got, strict=True):
        np.testing.assert_array_equal(a.mfcc, b.mfcc)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        assert b.landmarks.shape == (len(a.landmarks), 68, 2) and b.mfcc.shape[1] == 13 and b.fps == 25.0
    assert [g.speaker for g in read_items(root, "source_dir")] == ["spk0", "spk1", "spk0"]
    assert [g.id for g in read_items(root, ids=["c2"])] == ["c2"]
    assert [g.id for g in load_items(root, LipSyncDataConfig(), ids=["c1"])] == ["c1"]


def test_broken_datasets_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="manifest.jsonl"):
        read_items(tmp_path)
    with pytest.raises(InputError, match="no manifest.jsonl and no videos"):
        load_items(tmp_path, LipSyncDataConfig())
    root = write_dataset(tmp_path / "d", [synthetic_item("a", 10)])
    with (root / "manifest.jsonl").open("a") as f:
        f.write(json.dumps({"id": "ghost", "shard": "shards/0000-00000.tar"}) + "\n")
    with pytest.raises(InputError, match="ghost"):
        read_items(root)


def test_split_is_stable_and_checks_ids():
    items = [synthetic_item(f"id{i}", 5, seed=i) for i in range(20)]
    cfg = LipSyncDataConfig(holdout_fraction=0.2)
    train, held = split_items(items, cfg)
    assert len(train) + len(held) == 20 and held and {i.id for i in held} == {i.id for i in split_items(items, cfg)[1]}
    train, held = split_items(items, LipSyncDataConfig(holdout_ids=("id3",)))
    assert [i.id for i in held] == ["id3"] and len(train) == 19
    assert len(split_items(items[:2], LipSyncDataConfig(holdout_fraction=0.01))[1]) == 1  # at least one
    with pytest.raises(InputError, match="holdout_ids"):
        split_items(items, LipSyncDataConfig(holdout_ids=("nope",)))


def test_per_speaker_normalised_pca():
    """Two speakers moving with the same modes at different amplitudes and mouth shapes: after
    the per-speaker standardisation both have the same coefficient scale, the PCA explains the
    3 modes, and encode/decode gives the normalised mouth back."""
    a = synthetic_item("a", 200, seed=1)
    b = synthetic_item("b", 200, seed=2)
    m_b, _ = normalize_mouth(b.landmarks)
    # speaker b: wider mouth, motion x3 about its mean (same pose)
    mean_b = m_b.mean(0)
    lm_b = b.landmarks.copy()
    lm_b[:, 48:68] = b.landmarks[:, 48:68] + (2 * (m_b - mean_b) + 0.1 * mean_b) * np.linalg.norm(
        b.landmarks[:, 42:48].mean(1) - b.landmarks[:, 36:42].mean(1), axis=1)[:, None, None]
    b = LipSyncItem("b", "b", b.mfcc, lm_b)
    cfg = LipSyncDataConfig()
    f = MouthFeatures(cfg).fit([a, b])
    assert f.pca.explained_variance_ratio_[:3].sum() > 0.999  # 3 latent mouth factors
    assert f.speakers["b"].std == pytest.approx(3 * f.speakers["a"].std, rel=0.1)
    ea, eb = f.encode([a, b])
    assert ea.mouth.shape == (200, 10) and ea.mfcc.shape == (800, 13) and ea.mouth.dtype == np.float32
    ratio = eb.mouth[:, :3].std(0) / ea.mouth[:, :3].std(0)
    np.testing.assert_allclose(ratio, 1.0, atol=0.35)  # same scale after per-speaker normalisation
    dec = f.decode_mouth(ea.mouth, f.speakers["a"])  # (F,10)->(F,20,2)
    np.testing.assert_allclose(dec, normalize_mouth(a.landmarks)[0], atol=1e-4)
    g = MouthFeatures.from_dict(json.loads(json.dumps(f.to_dict())), cfg)
    np.testing.assert_allclose(g.encode([a])[0].mouth, ea.mouth, atol=1e-5)
    # standardised MFCC (training statistics); edge-padded to 4F
    np.testing.assert_allclose(np.concatenate([ea.mfcc, eb.mfcc]).mean(0), 0.0, atol=0.05)
    assert f.mfcc_input(a.mfcc[:10], 5).shape == (20, 13)


def test_windows_drop_frames_without_face_and_count_them():
    cfg = LipSyncDataConfig()
    it = synthetic_item("a", 120, seed=0)
    it.landmarks[60] = np.nan
    f = MouthFeatures(cfg).fit([it])
    (seq,) = f.encode([it])
    assert np.isnan(seq.mouth[60]).all() and not np.isnan(seq.mouth[59]).any()
    short = f.encode([synthetic_item("s", 30, seed=3)])[0]
    ds = WindowDataset([seq, short], 50, 1)
    # starts 0..70 (71 windows); those covering frame 60 (starts 11..60) are dropped
    assert len(ds) == 71 - 50 and ds.n_dropped == 50 and ds.short_ids == ["s"]
    b = ds[len(ds) - 1]
    assert b["mfcc"].shape == (200, 13) and b["mouth"].shape == (50, 10) and b["start"] == 70
    np.testing.assert_array_equal(b["mfcc"].numpy(), seq.mfcc[280:480])
    x, y = WindowDataset([seq], 50, 50).arrays()
    assert x.shape == (1, 200, 13) and y.shape == (1, 50, 10)  # start 0 only: 50 has frame 60


@pytest.mark.grid
def test_item_from_grid_video_is_cached(grid_clips, tmp_path):
    clip = grid_clips[0]
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / clip.name).symlink_to(clip)
    cfg = LipSyncDataConfig()
    (it,) = load_items(tmp_path / "v", cfg, cache_dir=tmp_path / "cache")
    assert it.id == clip.stem and it.landmarks.shape == (75, 68, 2) and not np.isnan(it.landmarks).any()
    assert abs(len(it.mfcc) - 300) <= 4 and it.mfcc.shape[1] == 13
    assert (tmp_path / "cache" / f"{clip.stem}.npz").is_file()
    (again,) = load_items(tmp_path / "v", cfg, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.landmarks, it.landmarks)
    seq = MouthFeatures(cfg).fit([it]).encode([it])[0]
    assert seq.mouth.shape == (75, 10) and seq.mfcc.shape == (300, 13)
