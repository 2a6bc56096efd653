"""Inception-I3D built from a config, weights from disk: tiny random networks saved to tmp, the
missing file named in one line, and the Fréchet distance of its features (FVD-style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.errors import InputError, MissingWeightsError
from a2v.metrics import fvd
from a2v.metrics.i3d import I3D_WEIGHTS_FILE, I3DConfig, InceptionI3d, load_i3d_weights

TINY = I3DConfig(num_classes=8, width=1 / 16)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    net = InceptionI3d(TINY)
    path = tmp_path_factory.mktemp("i3d") / "tiny_i3d.pt"
    torch.save(net.state_dict(), path)
    return path, net


def test_published_layout_and_shapes() -> None:
    full = InceptionI3d()
    keys = full.state_dict().keys()
    # parameter names of the PyTorch port's checkpoint (rgb_imagenet.pt)
    for k in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_mean", "Mixed_3b.b1b.conv3d.weight",
              "Mixed_5c.b3b.bn.bias", "logits.conv3d.weight", "logits.conv3d.bias"):
        assert k in keys, k
    assert full.feature_dim == 1024 and full.logits.conv3d.weight.shape == (400, 1024, 1, 1, 1)
    assert 12.0e6 < sum(p.numel() for p in full.parameters()) < 13.0e6  # I3D RGB: ~12.3 M parameters
    net = InceptionI3d(TINY).eval()
    x = torch.rand(2, 3, 16, 64, 64) * 2 - 1  # (B,3,F,H,W)
    assert net(x).shape == (2, 8) and net(x, return_features=False).shape == (2, net.feature_dim)


def test_load_weights_pt_and_safetensors(tiny_file, tmp_path) -> None:
    from safetensors.torch import save_file

    path, net = tiny_file
    x = torch.rand(1, 3, 8, 48, 48) * 2 - 1
    ref = net.eval()(x)
    torch.testing.assert_close(load_i3d_weights(path, TINY)(x), ref)
    st = tmp_path / "tiny.safetensors"
    save_file(net.state_dict(), str(st))
    torch.testing.assert_close(load_i3d_weights(st, TINY)(x), ref)
    old = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pt")  # checkpoints from before torch 0.4.1
    torch.testing.assert_close(load_i3d_weights(tmp_path / "old.pt", TINY)(x), ref)


def test_missing_and_mismatched_weights(tiny_file, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(MissingWeightsError) as e:
        load_i3d_weights(None)
    assert I3D_WEIGHTS_FILE in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MissingWeightsError, match="nowhere.pt"):
        load_i3d_weights(tmp_path / "nowhere.pt")
    with pytest.raises(InputError, match="does not hold InceptionI3d weights"):
        load_i3d_weights(tiny_file[0], I3DConfig(num_classes=8, width=1 / 8))


def test_frechet_distance_on_i3d_features(tiny_file) -> None:
    det = load_i3d_weights(tiny_file[0], TINY)
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (6, 8, 32, 32, 3), dtype=np.uint8)  # (N,F,H,W,3)
    same = fvd(real, real, detector=det, progress=False)
    dark = fvd(real, (real // 4).astype(np.uint8), detector=det, progress=False)
    assert same == pytest.approx(0.0, abs=1e-6) and dark > 1e-3
