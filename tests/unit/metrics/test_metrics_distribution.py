"""Fréchet distance against closed forms and scipy; FID and FVD through their real loading code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from a2v.errors import MissingWeightsError
from a2v.metrics import fid, frechet_distance, fvd, gaussian_stats
from a2v.metrics.distribution import INCEPTION_FILES, build_fid, i3d_features, load_i3d


def _scipy_frechet(mu1, s1, mu2, s2):
    """pytorch-fid's formula with scipy.linalg.sqrtm, as the reference."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _random_spd(g: np.random.Generator, d: int) -> np.ndarray:
    a = g.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d)


def test_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()  # 10 + (1 + 1 + 6.25)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-9)


def test_matches_scipy_sqrtm_reference():
    g = np.random.default_rng(0)
    for d in (2, 16, 64):
        mu1, mu2 = g.standard_normal(d), g.standard_normal(d)
        s1, s2 = _random_spd(g, d), _random_spd(g, d)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_scipy_frechet(mu1, s1, mu2, s2), rel=1e-7)


def test_gaussian_stats_matches_numpy():
    x = np.random.default_rng(1).standard_normal((50, 4))
    mu, sigma = gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.mean(0))
    np.testing.assert_allclose(sigma.numpy(), np.cov(x, rowvar=False))


class _TinyFeatures(torch.nn.Module):
    """A random conv feature extractor standing in for InceptionV3: (B,3,H,W) -> (B,8)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x).tanh().mean(dim=(2, 3))  # (B,3,H,W)->(B,8)


def test_fid_with_custom_feature_network_matches_frechet_distance():
    from torchmetrics.image.fid import FrechetInceptionDistance

    g = torch.Generator().manual_seed(2)
    real, fake = torch.rand(24, 3, 16, 16, generator=g), torch.rand(20, 3, 16, 16, generator=g) ** 2
    net = _TinyFeatures()
    metric = FrechetInceptionDistance(feature=net, normalize=True, input_img_size=(3, 16, 16))
    got = fid(real, fake, metric=metric, batch_size=7, progress=False)
    with torch.no_grad():
        expected = frechet_distance(*gaussian_stats(net(real)), *gaussian_stats(net(fake)))
    assert got == pytest.approx(expected, rel=1e-4)
    assert got > 0


def test_fid_missing_weights_names_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=INCEPTION_FILES[0]) as e:
        build_fid()
    assert str(tmp_path) in str(e.value)
    with pytest.raises(MissingWeightsError, match="not found"):
        build_fid(weights_path=tmp_path / "nope.pth")


def test_fid_loads_inception_weights_from_hub_dir(tmp_path, monkeypatch):
    """Random InceptionV3 weights saved under the expected name go through the real loader."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with monkeypatch.context() as m:  # build a randomly initialised InceptionV3 without any download
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: None)
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    state = net.state_dict()
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(state, ckpt / INCEPTION_FILES[0])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    metric = build_fid()
    torch.testing.assert_close(metric.inception.fc.weight, state["fc.weight"])
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 32, 32, generator=g)
    assert fid(x, x, metric=metric, progress=False) == pytest.approx(0.0, abs=1e-3)


class _TinyI3D(torch.nn.Module):
    """Per-channel mean over (F,H,W): (B,3,F,224,224) in [-1,1] -> (B,3); checks the I3D input contract."""

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = True
    ):
        if (
            x.shape[1] != 3
            or x.shape[3] != 224
            or x.shape[4] != 224
            or rescale
            or resize
            or not return_features
        ):
            raise RuntimeError("bad I3D input")
        if bool(x.min() < -1.0) or bool(x.max() > 1.0):
            raise RuntimeError("I3D input outside [-1, 1]")
        return x.mean(dim=(2, 3, 4))


def _constant_videos(levels: np.ndarray, frames: int = 4, h: int = 30, w: int = 40) -> torch.Tensor:
    """float (B,F,3,H,W) videos, constant per (video, channel) at ``levels`` (B,3) in [0,1]."""
    v = torch.as_tensor(levels, dtype=torch.float32)[:, None, :, None, None]  # (B,3)->(B,1,3,1,1)
    return v.expand(-1, frames, -1, h, w).contiguous()  # (B,F,3,H,W)


@pytest.mark.filterwarnings("ignore:.*torch.jit.*is deprecated:FutureWarning")
def test_fvd_with_tiny_torchscript_detector(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_TinyI3D()), str(path))
    g = np.random.default_rng(4)
    lr, lf = g.random((6, 3)), g.random((5, 3)) ** 2  # (N,3) colour levels
    real, fake = _constant_videos(lr), _constant_videos(lf)
    # Constant videos survive resize + crop, so the features are exactly 2*level - 1.
    expected = frechet_distance(*gaussian_stats(2 * lr - 1), *gaussian_stats(2 * lf - 1))
    got = fvd(real, fake, i3d_path=path, batch_size=4, progress=False)
    assert got == pytest.approx(expected, rel=1e-4)
    as_uint8 = (real * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)  # (B,F,3,H,W)->(B,F,H,W,3)
    det = load_i3d(path)
    feats = i3d_features(as_uint8, det, progress=False)
    np.testing.assert_allclose(feats.numpy(), 2 * np.round(lr * 255) / 255 - 1, atol=1e-5)


def test_fvd_missing_detector(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    v = torch.rand(2, 2, 3, 8, 8)
    with pytest.raises(MissingWeightsError, match="i3d_torchscript.pt"):
        fvd(v, v, progress=False)
