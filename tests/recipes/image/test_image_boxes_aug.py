"""Training-picture inputs of the tower: detector boxes (prepare maps them through the crop; BriVL reads them,
grid only as the labelled fallback) and cached augmented views (random grayscale, colour jitter)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from image_testutil import tone

from a2v.errors import InputError
from a2v.recipes.image.config import DataConfig, TowerConfig
from a2v.recipes.image.data import PairDataset, crop_boxes, prepare_pairs
from a2v.recipes.image.towers import TinyTower
from a2v.recipes.image.train import augment, cached_image_embeddings, embed_images, pick_view


@pytest.fixture
def data(tmp_path):
    """Three (tone, 40x60 picture) pairs; the first two have a detector's boxes beside the picture."""
    from a2v.audio import save_audio
    from a2v.video import write_png

    src = tmp_path / "in" / "cls"
    rng = np.random.default_rng(0)
    for k in range(3):
        save_audio(src / f"s{k}.wav", tone(300.0 + 100 * k, 0.5, seed=k), 16000)
        write_png(src / f"s{k}.png", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    np.save(src / "s0.boxes.npy", np.array([[10, 0, 30, 20, 0.9], [0, 0, 5, 5, 0.8]], np.float32))  # x1,y1,x2,y2,score
    (src / "s1.boxes.json").write_text(json.dumps({"boxes": [[20, 10, 50, 40]]}))
    out = tmp_path / "data"
    rep = prepare_pairs([tmp_path / "in"], out, DataConfig(image_size_px=20, val_fraction=0.0), progress=False)
    assert rep["pairs"] == 3 and rep["with_detector_boxes"] == 2
    return out


def test_prepare_maps_detector_boxes_through_the_centre_crop(data):
    # 40x60 -> centre square x in [10,50), scaled by 20/40: [10,0,30,20] -> [0,0,10,10]; [0,0,5,5] has no area left
    np.testing.assert_allclose(crop_boxes(np.array([[10, 0, 30, 20], [0, 0, 5, 5]], np.float32), (40, 60), 20),
                               [[0, 0, 10, 10]])
    pairs = PairDataset(data, "all", 0.5)
    by_src = {r["source"].rsplit("/", 1)[-1]: i for i, r in enumerate(pairs.rows)}
    np.testing.assert_allclose(pairs.boxes(by_src["s0.wav"]), [[0.0, 0.0, 0.5, 0.5]])  # fractions of the side
    np.testing.assert_allclose(pairs.boxes(by_src["s1.wav"]), [[0.25, 0.25, 1.0, 1.0]])  # [20,10,50,40] -> px 5..20
    assert pairs.boxes(by_src["s2.wav"]) is None


def test_brivl_tower_reads_detector_boxes_and_grid_is_the_labelled_fallback(data, tmp_path):
    pytest.importorskip("timm")
    from test_image_tower_brivl import TINY, tower_cfg

    from a2v.recipes.image.brivl import BriVLImageEncoder
    from a2v.recipes.image.towers import build_tower

    torch.manual_seed(0)
    ref = BriVLImageEncoder(TINY).eval()
    ckpt = tmp_path / "brivl.pth"
    torch.save({"learnable": {f"imgencoder.{k}": v for k, v in ref.state_dict().items()}}, ckpt)
    det = build_tower(tower_cfg(ckpt, brivl_boxes="detector"))
    grid = build_tower(tower_cfg(ckpt, brivl_boxes="grid"))
    assert det.cache_id.endswith("boxes=detector") and grid.cache_id.endswith("boxes=grid")
    pairs = PairDataset(data, "all", 0.5)
    with pytest.raises(InputError, match="1 of 3 pairs have no detector boxes.*brivl_boxes=grid"):
        cached_image_embeddings(det, pairs, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()  # nothing half-written
    keep = [i for i in range(3) if pairs.boxes(i) is not None]
    pairs.rows = [pairs.rows[i] for i in keep]
    got = embed_images(det, pairs, progress=False)  # (2,E)
    with torch.no_grad():
        for k in range(2):
            img = pairs[k]["image"][None]
            want = det.encode_image(img, boxes=torch.from_numpy(pairs.boxes(k))[None])
            torch.testing.assert_close(got[k:k + 1], want)
        torch.testing.assert_close(embed_images(grid, pairs, progress=False)[:1], grid.encode_image(pairs[0]["image"][None]))
    assert not torch.allclose(got, embed_images(grid, pairs, progress=False))  # the boxes were used
    assert TowerConfig().brivl_boxes == "detector"


def test_cached_augmented_views(data, tmp_path):
    tower = TinyTower(8, 16)
    pairs = PairDataset(data, "all", 0.5)
    aug = DataConfig(aug_views=3)
    emb = cached_image_embeddings(tower, pairs, tmp_path / "c", progress=False, aug=aug)  # (N,V,E)
    assert emb.shape == (3, 3, 8) and emb.dtype == torch.float16  # views are cached at half precision
    assert not torch.allclose(emb[:, 0], emb[:, 1])  # views differ
    torch.testing.assert_close(embed_images(tower, pairs, progress=False, aug=aug).half(), emb)  # seeded
    from a2v.recipes.image.data import EmbeddedPairs

    assert EmbeddedPairs(pairs, emb)[0]["image_emb"].dtype == torch.float32
    plain = cached_image_embeddings(tower, pairs, tmp_path / "c", progress=False)  # no views: another cache entry
    assert plain.shape == (3, 8) and len(list((tmp_path / "c").glob("*.safetensors"))) == 2
    gray = DataConfig(aug_views=2, aug_jitter_p=0.0, aug_grayscale_p=1.0)  # always grayscale, never jitter
    x = torch.stack([pairs[i]["image"] for i in range(3)])  # (3,3,P,P)
    g = augment(x, gray)
    lum = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # ITU-R 601-2, as torchvision
    torch.testing.assert_close(g, lum[:, None].expand(-1, 3, -1, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(augment(x, DataConfig(aug_jitter_p=0.0, aug_grayscale_p=0.0)), x)
    batch = torch.arange(12.0).view(2, 3, 2)  # (B,V,E)
    picked = pick_view(batch)  # one of each item's views
    assert picked.shape == (2, 2) and all(any(torch.equal(picked[b], batch[b, v]) for v in range(3)) for b in range(2))


def test_train_with_brivl_detector_boxes_end_to_end(data, tmp_path, wavlm_dir):
    """a2v image train on the paper's tower settings (BriVL, detector boxes, CXLoss, augmented views), tiny sizes."""
    pytest.importorskip("timm")
    from safetensors import safe_open
    from test_image_tower_brivl import TINY, tower_cfg

    from a2v.cli import main
    from a2v.recipes.image.brivl import BriVLImageEncoder
    from a2v.recipes.image.pipeline import ImagePipeline

    torch.manual_seed(0)
    ckpt = tmp_path / "BriVL-tiny.pth"
    torch.save({"learnable": {f"imgencoder.{k}": v for k, v in BriVLImageEncoder(TINY).state_dict().items()}}, ckpt)
    tc = tower_cfg(ckpt)
    sets = [f"tower.{k}={getattr(tc, k)}" for k in ("kind", "weights", "brivl_backbone", "brivl_image_size_px",
                                                    "brivl_num_heads", "brivl_grid_size", "brivl_box_grid")]
    sets += [f"audio.encoder={wavlm_dir}", "audio.num_layers=1", "audio.num_heads=2", "audio.ff_dim=64",
             "audio.mlp_hidden_dim=64", "audio.clip_s=0.5", "data.aug_views=2", "train.max_steps=2",
             "train.batch_size=2", "train.eval_every=0", "train.cpu=true", "train.tensorboard=false",
             "generate.vq.kind=tiny"]
    args = ["image", "train", "-d", str(data), "-o", str(tmp_path / "run"), "--no-progress"]
    args += [a for s in sets for a in ("--set", s)]
    assert main(args) == 2  # one pair has no detector boxes: refused, not silently gridded
    pairs = PairDataset(data, "all", 0.5)
    lacking = next(r["id"] for i, r in enumerate(pairs.rows) if pairs.boxes(i) is None)
    np.save(data / "boxes" / f"{lacking}.npy", np.array([[0, 0, 10, 20]], np.float32))  # the detector's output
    assert main(args) == 0
    caches = list((data / "cache").glob("image_emb_*.safetensors"))
    with safe_open(str(caches[0]), "pt") as f:
        assert f.metadata()["tower"].endswith("boxes=detector") and f.metadata()["augmentation"].startswith("aug:2")
        assert f.get_slice("embeddings").get_shape() == [3, 2, 256]  # (N,V,E)
    pipe = ImagePipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert pipe.cfg.tower.brivl_boxes == "detector" and pipe.audio.proj is not None  # g of CXLoss kept


def test_detect_boxes_writes_box_files_brivl_reads(data, tmp_path, capsys):
    """torchvision's Faster R-CNN (random weights here, in the layout of its released state dict) fills boxes/."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    from a2v.cli import main

    torch.manual_seed(0)
    w = tmp_path / "frcnn.pth"
    torch.save(fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict(), w)
    pairs = PairDataset(data, "all", 0.5)
    before = {i: pairs.boxes(i) for i in range(3)}
    args = ["image", "detect-boxes", "-d", str(data), "--weights", str(w), "--score-min", "0", "--max-boxes", "5",
            "--min-size-px", "64", "--no-progress"]
    assert main(args) == 0
    rep = json.loads((data / "boxes" / "detector.json").read_text())
    assert (rep["pictures"], rep["detected"], rep["kept_existing"]) == (3, 1, 2)  # prepare's boxes kept
    new = next(i for i in range(3) if before[i] is None)
    raw = np.load(data / "boxes" / f"{pairs.rows[new]['id']}.npy")  # (N,5) x1,y1,x2,y2,score
    assert raw.ndim == 2 and raw.shape[1] == 5 and raw.shape[0] <= 5
    assert np.all(np.diff(raw[:, 4]) <= 0) and raw[:, :4].min() >= 0 and raw[:, :4].max() <= 20
    got = pairs.boxes(new)
    assert got.shape == (len(raw), 4) and np.allclose(got, raw[:, :4] / 20)
    torch.save({"backbone.body.conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    assert main(["image", "detect-boxes", "-d", str(data), "--weights", str(tmp_path / "other.pth")]) == 2
    assert "not a torchvision fasterrcnn_resnet50_fpn_v2 state dict" in capsys.readouterr().err
