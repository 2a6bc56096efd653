"""LPIPS: the missing-weights error, and the real loading path checked against torchmetrics' LPIPS."""

from __future__ import annotations

import pytest
import torch

from a2v.errors import InputError, MissingWeightsError
from a2v.metrics import build_lpips, lpips_distance
from a2v.metrics.perceptual import BACKBONE_FILES

pytest.importorskip("lpips")


def test_missing_backbone_weights_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth") as e:
        build_lpips("alex")
    assert str(tmp_path / "hub" / "checkpoints") in str(e.value)
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        lpips_distance(x, x, net="vgg")
    with pytest.raises(MissingWeightsError, match="not found"):
        build_lpips("alex", weights_path=tmp_path / "missing.pth")


@pytest.fixture
def random_alexnet_features(tmp_path, monkeypatch):
    """Randomly initialised torchvision AlexNet features saved where torchvision would keep them."""
    import torchvision

    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    torch.save(state, ckpt / BACKBONE_FILES["alex"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return features


def test_lpips_matches_torchmetrics_with_same_backbone(random_alexnet_features, monkeypatch):
    import torchmetrics.functional.image.lpips as tml

    model = build_lpips("alex")
    torch.testing.assert_close(model.net.slice1[0].weight, random_alexnet_features[0].weight)
    torch.testing.assert_close(getattr(model.net.slice5, "10").weight, random_alexnet_features[10].weight)

    # Reference: torchmetrics' own LPIPS, its backbone builder fed the same random features.
    monkeypatch.setattr(tml, "_get_tv_model_features", lambda net, pretrained=False: random_alexnet_features)
    ref_net = tml._LPIPS(pretrained=True, net="alex").eval()

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 3, 48, 48, generator=g), torch.rand(3, 3, 48, 48, generator=g)
    got = lpips_distance(x, y, model=model, batch_size=2, reduction="none")
    with torch.no_grad():
        ref = ref_net(x, y, normalize=True).reshape(-1)
    assert got.shape == (3,)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
    assert float(lpips_distance(x, x, model=model)) == pytest.approx(0.0, abs=1e-7)

    # uint8 (B,H,W,3) input is converted to the same float images.
    xu = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # (B,3,H,W)->(B,H,W,3)
    xf = xu.permute(0, 3, 1, 2).float() / 255  # (B,H,W,3)->(B,3,H,W)
    torch.testing.assert_close(lpips_distance(xu, y, model=model), lpips_distance(xf, y, model=model))


def test_lpips_rejects_bad_weights_and_range(tmp_path):
    bad = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"features.0.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(InputError, match="does not hold torchvision alexnet"):
        build_lpips("alex", weights_path=bad)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        lpips_distance(torch.full((1, 3, 32, 32), 2.0), torch.zeros(1, 3, 32, 32), model=torch.nn.Identity())
