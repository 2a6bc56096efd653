"""BriVL's image encoder: a tiny config saved in the released checkpoint's layout and loaded through build_tower."""

from __future__ import annotations

import types
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.recipes.image.config import TowerConfig

pytest.importorskip("timm")

from a2v.recipes.image.brivl import (  # noqa: E402
    BriVLConfig,
    BriVLImageEncoder,
    build_backbone,
    config_from_state,
    default_boxes,
)
from a2v.recipes.image.towers import BriVLTower, build_tower  # noqa: E402

# timm's test_efficientnet: 256-d features, stride 32 -> a 3x3 map at 96 px
TINY = BriVLConfig(backbone="test_efficientnet", image_size_px=96, feature_dim=256, num_heads=2, num_layers=1,
                   grid_size=2, box_grid=2)


def tower_cfg(weights, **kw) -> TowerConfig:
    base = dict(kind="brivl", weights=str(weights), brivl_backbone=TINY.backbone, brivl_image_size_px=96,
                brivl_num_heads=2, brivl_grid_size=2, brivl_box_grid=2)
    return TowerConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(reference encoder, checkpoint path) in the layout of BriVL-1.0-5500w.pth: {"learnable": {...}}
    with the image encoder, its momentum copy and text-side keys."""
    torch.manual_seed(0)
    ref = BriVLImageEncoder(TINY).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a lost buffer shows
        for name, buf in ref.backbone.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    learnable = {f"imgencoder.{k}": v for k, v in ref.state_dict().items()}
    learnable |= {f"imgencoder_mom.{k}": torch.zeros_like(v) for k, v in ref.state_dict().items()}
    learnable["textencoder.learnable.textFC.fc1.weight"] = torch.zeros(4, 4)
    path = tmp_path_factory.mktemp("brivl") / "BriVL-tiny.pth"
    torch.save({"learnable": learnable, "epoch": 3}, path)
    return ref, path


def reference_roi_grid_pool(enc, fmap, rois):
    """BriVL's roi_grid_pool as published: a loop over images, the map expanded once per box."""
    h, w = fmap.shape[2:]
    ratio = enc.cfg.image_size_px / h
    out = []
    for b in range(fmap.shape[0]):
        x1, y1, x2, y2 = (rois[b, :, i] / ratio for i in range(4))
        cosa, sina = torch.ones(1), torch.zeros(1)
        theta = torch.stack(((x2 - x1) / (w - 1) * cosa, (x2 - x1) / (w - 1) * (-sina), (x1 + x2 - w + 1) / (w - 1),
                             (y2 - y1) / (h - 1) * sina, (y2 - y1) / (h - 1) * cosa, (y1 + y2 - h + 1) / (h - 1)),
                            dim=1).view(-1, 2, 3)
        g = enc.cfg.grid_size
        grid = F.affine_grid(theta, torch.Size((rois.size(1), fmap.size(1), g, g)), align_corners=False)
        pooled = F.grid_sample(fmap[b][None].expand(rois.size(1), -1, h, w), grid, align_corners=False)
        out.append(enc.learnable["max_pool"](pooled).flatten(1))
    return torch.stack(out)


def test_loaded_tower_equals_the_saved_encoder(saved):
    ref, path = saved
    tower = build_tower(tower_cfg(path))
    assert isinstance(tower, BriVLTower) and tower.encoder.cfg == TINY
    assert (tower.embed_dim, tower.image_size_px, tower.has_text) == (256, 96, False)
    got_sd, want_sd = tower.encoder.state_dict(), ref.state_dict()
    assert got_sd.keys() == want_sd.keys() and all(torch.equal(got_sd[k], want_sd[k]) for k in want_sd)
    x = torch.rand(2, 3, 96, 96)
    boxes = default_boxes(96, 2).expand(2, -1, 4)  # (2,5,4): 2x2 grid + the whole image
    with torch.no_grad():
        want = ref((x - tower.mean) / tower.std, boxes, torch.ones(2, 5, dtype=torch.bool))
        got = tower.encode_image(x)  # (2,3,96,96)->(2,256)
    assert got.shape == (2, 256)
    torch.testing.assert_close(got, want)
    assert build_tower(tower_cfg(path)).cache_id == tower.cache_id  # stable cache key
    assert tower.cache_id.startswith("brivl:test_efficientnet:s96")


def test_roi_grid_pool_matches_the_published_loop():
    torch.manual_seed(1)
    enc = BriVLImageEncoder(TINY).eval()
    fmap = torch.randn(2, 256, 3, 3)
    rois = torch.tensor([[[0, 0, 96, 96], [10, 20, 50, 90], [0, 0, 0, 0]],
                         [[30, 5, 60, 40], [0, 0, 48, 48], [48, 48, 96, 96]]], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(enc.roi_grid_pool(fmap, rois), reference_roi_grid_pool(enc, fmap, rois))
    assert default_boxes(96, 2).tolist() == [[0, 0, 48, 48], [48, 0, 96, 48], [0, 48, 48, 96], [48, 48, 96, 96],
                                             [0, 0, 96, 96]]


def test_boxes_whole_image_and_padding(saved):
    _, path = saved
    tower = build_tower(tower_cfg(path))
    whole_only = build_tower(tower_cfg(path, brivl_box_grid=0))
    x = torch.rand(2, 3, 80, 72)
    with torch.no_grad():
        a = whole_only.encode_image(x)  # default boxes: the whole image alone
        b = tower.encode_image(x, boxes=torch.zeros(2, 0, 4))  # no detector boxes: the whole image is appended
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, tower.encode_image(x))  # the grid boxes matter
        one = torch.tensor([[[0.1, 0.2, 0.6, 0.9]]]).expand(2, 1, 4)  # (2,1,4) fractions
        junk = torch.tensor([[[0.5, 0.5, 1.0, 1.0]], [[0.0, 0.0, 0.3, 0.2]]])  # (2,1,4) padding
        padded = tower.encode_image(x, boxes=torch.cat([one, junk], 1), box_mask=torch.tensor([[1, 0], [1, 0]]))
        torch.testing.assert_close(padded, tower.encode_image(x, boxes=one))  # a padded box changes nothing
        unmasked = tower.encode_image(x, boxes=torch.cat([one, junk], 1))
        assert not torch.allclose(padded, unmasked)
    with pytest.raises(InputError, match="boxes must be"):
        tower.encode_image(x, boxes=torch.zeros(2, 4))


def test_gradients_reach_the_image(saved):
    tower = build_tower(tower_cfg(saved[1]))
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    (tower.encode_image(x) * torch.randn(1, 256)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in tower.parameters())


def test_loading_errors(saved, tmp_path):
    ref, path = saved
    with pytest.raises(MissingWeightsError, match="BriVL-nowhere.pth"):
        build_tower(tower_cfg(tmp_path / "BriVL-nowhere.pth"))
    with pytest.raises(MissingWeightsError, match="not given"):
        build_tower(tower_cfg(""))
    sd = {f"learnable.imgencoder.{k}": v for k, v in ref.state_dict().items()}  # another prefix layout, safetensors
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "brivl.safetensors")
    assert build_tower(tower_cfg(tmp_path / "brivl.safetensors")).embed_dim == 256
    del sd["learnable.imgencoder.learnable.max_pool.0.bias"]
    torch.save(sd, tmp_path / "short.pth")
    with pytest.raises(ConfigError, match="1 missing"):  # strict: every tensor must be there
        build_tower(tower_cfg(tmp_path / "short.pth"))
    with pytest.raises(ConfigError, match="gives 1280-d features"):  # 256-d weights, 1280-d backbone
        build_tower(tower_cfg(path, brivl_backbone="efficientnet_b0"))
    with pytest.raises(ConfigError, match="does not fit backbone test_efficientnet_gn"):  # same width, GroupNorm
        build_tower(tower_cfg(path, brivl_backbone="test_efficientnet_gn"))
    torch.save({"learnable": {"textencoder.x": torch.zeros(1)}}, tmp_path / "text_only.pth")
    with pytest.raises(InputError, match="no image-encoder tensors"):
        build_tower(tower_cfg(tmp_path / "text_only.pth"))
    torch.save({"learnable": {}, "cfg": types.SimpleNamespace(a=1)}, tmp_path / "pickled.pth")
    with pytest.raises(InputError, match="weights_only=True"):
        build_tower(tower_cfg(tmp_path / "pickled.pth"))


def test_bare_checkpoint_name_is_found_in_the_torch_hub_folder(saved, tmp_path, monkeypatch):
    """tower.weights=BriVL-1.0-5500w.pth (the paper config) follows the weight-file rule of `a2v info`."""
    import shutil

    _, path = saved
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingWeightsError, match="tower.weights"):
        build_tower(tower_cfg("BriVL-1.0-5500w.pth"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(path, hub / "BriVL-1.0-5500w.pth")
    assert build_tower(tower_cfg("BriVL-1.0-5500w.pth")).embed_dim == 256


def test_released_and_paper_shapes_without_building_them():
    meta = {"learnable.imgFC.fc1.weight": torch.empty(2048, 2048, device="meta")}
    meta |= {f"learnable.imgAtt.layers.{i}.linear1.weight": torch.empty(1, device="meta") for i in range(4)}
    cfg = config_from_state(meta)
    assert cfg == BriVLConfig()  # BriVL-1.0: tf_efficientnet_b5 at 456 px, 2048-d, 4 layers, 4 heads
    paper = BriVLConfig.paper()
    assert (paper.backbone, paper.feature_dim) == ("tf_efficientnet_b7", 2560)
    with torch.device("meta"):  # architecture only, no memory, no weights
        assert build_backbone(cfg.backbone).num_features == cfg.feature_dim
        assert build_backbone(paper.backbone).num_features == paper.feature_dim
    with pytest.raises(ConfigError, match="brivl_backbone"):
        config_from_state({"learnable.imgFC.fc1.weight": torch.empty(7, 7)})
    with pytest.raises(ConfigError, match="gives 256-d features"):
        BriVLImageEncoder(replace(TINY, feature_dim=128))
