"""VGG19 perceptual loss: layer slices, frozen weights, loading a torchvision state dict, missing weights."""

from __future__ import annotations

import pytest
import torch

from a2v.errors import InputError, MissingWeightsError
from a2v.gan.perceptual import VGG19_FILE, VGG19_SLICES, VGGPerceptualLoss, load_vgg19_trunk, vgg19_trunk


@pytest.fixture(scope="module")
def trunk() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return vgg19_trunk()


def test_slices_end_at_relu_n_1(trunk: torch.nn.Sequential) -> None:
    # pix2pixHD Vgg19: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of torchvision vgg19().features
    ends = [b - 1 for _, b in VGG19_SLICES]
    assert all(isinstance(trunk[i], torch.nn.ReLU) for i in ends)
    convs_before = [sum(isinstance(m, torch.nn.Conv2d) for m in trunk[:b]) for _, b in VGG19_SLICES]
    assert convs_before == [1, 3, 5, 9, 13]  # conv1_1, conv2_1, conv3_1, conv4_1, conv5_1


def test_loss_properties(trunk: torch.nn.Sequential) -> None:
    loss = VGGPerceptualLoss(trunk=trunk)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0.0
    feats = loss.features(x)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    want = sum(w * (a - b).abs().mean() for w, a, b in zip(loss.layer_weights, feats, loss.features(y), strict=True))
    torch.testing.assert_close(loss(x, y), want)
    xg = x.clone().requires_grad_(True)
    yg = y.clone().requires_grad_(True)
    loss(xg, yg).backward()
    assert xg.grad.abs().sum() > 0 and yg.grad is None
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training


def test_loads_torchvision_weights(tmp_path, trunk: torch.nn.Sequential) -> None:
    path = tmp_path / VGG19_FILE
    state = {f"features.{k}": v for k, v in trunk.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full-model file carries the classifier too
    torch.save(state, path)
    loaded = load_vgg19_trunk(path)
    for (k, a), b in zip(trunk.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    assert isinstance(VGGPerceptualLoss(weights_path=path), VGGPerceptualLoss)


def test_wrong_file_is_an_input_error(tmp_path) -> None:
    path = tmp_path / "x.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="VGG19"):
        load_vgg19_trunk(path)


def test_missing_weights_name_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(MissingWeightsError, match=VGG19_FILE):
        VGGPerceptualLoss()
    with pytest.raises(MissingWeightsError, match="nope.pth"):
        VGGPerceptualLoss(weights_path=tmp_path / "nope.pth")
