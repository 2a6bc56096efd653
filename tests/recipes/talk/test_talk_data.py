"""Talk data: offsets and their inverse, the global normalizer, clip split, training windows, latent store,
reading a prepared dataset."""

import json

import numpy as np
import pytest
import torch

from a2v.errors import InputError
from a2v.recipes.talk.data import (
    LatentStore,
    Normalizer,
    WindowDataset,
    apply_offsets,
    frames_to_tensor,
    iter_prepared_clips,
    offsets,
    split_ids,
    tensor_to_frames,
)


def test_offsets_and_inverse():
    ws = torch.randn(4, 8, 3)
    dw = offsets(ws, (5, 6, 7))
    assert dw.shape == (4, 9)
    assert torch.equal(dw[0], torch.zeros(9))
    torch.testing.assert_close(dw[2].reshape(3, 3), ws[2, 5:8] - ws[0, 5:8])
    back = apply_offsets(ws[0], dw, (5, 6, 7))
    torch.testing.assert_close(back[:, 5:8], ws[:, 5:8])
    assert torch.equal(back[:, :5], ws[0, :5].expand(4, 5, 3))  # other rows stay w0
    with pytest.raises(InputError, match="W\\+ rows"):
        offsets(ws, (8,))


def test_normalizer_is_global():
    x = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    n = Normalizer.fit(x)
    assert n.mean == pytest.approx(4.0) and n.std == pytest.approx(float(x.std()))
    torch.testing.assert_close(n.inverse(n(x)), x)
    assert abs(float(n(x).mean())) < 1e-6


def test_split_ids():
    tr, va = split_ids([f"c{i}" for i in range(10)], 0.1)
    assert va == ["c9"] and len(tr) == 9
    assert split_ids(["a"], 0.5) == (["a"], [])
    assert split_ids(["a", "b", "c"], 0.0) == (["a", "b", "c"], [])


def test_window_dataset_alignment_and_padding():
    feats = [torch.arange(30.0)[:, None].expand(30, 2), torch.arange(8.0)[:, None].expand(8, 2)]  # 50 Hz
    codes = [torch.arange(15.0)[:, None], torch.arange(4.0)[:, None]]  # 25 fps
    ds = WindowDataset(feats, codes, window_frames=10)
    assert len(ds) == 2 + 1  # clip 0: starts 0, 5; clip 1: one padded window
    item = ds[1]
    assert item["feats"].shape == (20, 2) and item["codes"].shape == (10, 1)
    assert item["feats"][0, 0] == 10 and item["codes"][0, 0] == 5  # frame 5 <-> feature rows 10, 11
    short = ds[2]
    assert short["mask"].tolist() == [True] * 4 + [False] * 6
    assert torch.equal(short["feats"][8:], torch.zeros(12, 2))
    with pytest.raises(InputError):
        WindowDataset(feats, codes, 10, feat_rate_hz=50.0, fps=30.0)


def test_frame_conversion_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = frames_to_tensor(frames, 8)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(tensor_to_frames(x), frames)
    assert frames_to_tensor(frames, 4).shape == (2, 3, 4, 4)


def test_latent_store_round_trip(tmp_path):
    clip = {"ws": torch.randn(3, 8, 4), "loss": torch.rand(3), "mse": torch.rand(3), "audio": torch.randn(1920)}
    store = LatentStore.write(tmp_path / "lat", [("a", clip)], fps=25.0, audio_sr=16000, num_ws=8, w_dim=4)
    again = LatentStore(tmp_path / "lat")
    assert again.ids == ["a"] and again.fps == 25.0 and store.index["w_dim"] == 4
    for k, v in clip.items():
        torch.testing.assert_close(again.clip("a")[k], v)
    with pytest.raises(InputError, match="invert"):
        LatentStore(tmp_path / "none")


def test_reads_a_prepared_dataset(tmp_path):
    from a2v.data.shards import MANIFEST, ShardWriter, append_jsonl
    from a2v.video import VideoWriter

    crop = tmp_path / "crop.mp4"
    frames = np.full((5, 32, 32, 3), 128, np.uint8)
    with VideoWriter(crop, 25.0) as w:
        for f in frames:
            w.write(f)
    ds = tmp_path / "ds"
    audio = np.zeros(3200, np.float32)
    rows = []
    with ShardWriter(ds, "0000", on_close=lambda shard, keys: rows.extend({"id": k, "shard": shard} for k in keys)) as sw:
        sw.add("c0", {"crop.mp4": crop, "audio.npy": audio, "meta.json": {"fps": 25.0, "n_frames": 5}})
        sw.add("c1", {"audio.npy": audio, "meta.json": {"fps": 25.0}})
    append_jsonl(ds / MANIFEST, rows[:1])
    clips = list(iter_prepared_clips(ds))
    assert [c.id for c in clips] == ["c0"]
    assert clips[0].frames.shape == (5, 32, 32, 3) and abs(int(clips[0].frames.mean()) - 128) <= 2
    assert clips[0].fps == 25.0 and clips[0].audio.shape == (3200,)
    append_jsonl(ds / MANIFEST, rows[1:])
    with pytest.raises(InputError, match="lacks crop.mp4"):
        list(iter_prepared_clips(ds))
    assert json.loads((ds / MANIFEST).read_text().splitlines()[0])["id"] == "c0"
