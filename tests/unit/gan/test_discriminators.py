"""Multi-scale PatchGAN discriminators: feature lists, patch-map sizes of pix2pixHD's 4x4/pad-2 convs."""

from __future__ import annotations

import pytest
import torch

from a2v.gan.discriminators import MultiscaleDiscriminator, NLayerDiscriminator


def _patch_sizes(h: int, n_layers: int) -> list[int]:
    """Closed form of every layer's side: stride 2 -> h/2+1 (k4, pad 2), stride 1 -> h+1."""
    out = []
    for i in range(n_layers + 2):
        h = h // 2 + 1 if i < n_layers else h + 1
        out.append(h)
    return out


@pytest.mark.parametrize("size", [128, 256])
def test_multiscale_shapes(size: int) -> None:
    d = MultiscaleDiscriminator(6, ndf=8, n_layers=3, num_D=3)
    out = d(torch.randn(2, 6, size, size))
    assert len(out) == 3
    for i, feats in enumerate(out):
        assert len(feats) == 5
        sides = [f.shape[-1] for f in feats]
        assert sides == _patch_sizes(size // 2**i, 3)
        assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
        assert all(f.shape[0] == 2 for f in feats)


def test_channels_capped_at_512() -> None:
    d = NLayerDiscriminator(3, ndf=256, n_layers=3)
    chans = [m.out_channels for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert chans == [256, 512, 512, 512, 1]


def test_scales_see_the_pyramid() -> None:
    """Scale k judges the input average-pooled k times (3x3, stride 2, padding excluded)."""
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(3, ndf=4, n_layers=2, num_D=2)
    x = torch.randn(1, 3, 32, 32)
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(d(x)[1][-1], d.scales[1](pooled)[-1])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        MultiscaleDiscriminator(3, num_D=0)
    with pytest.raises(ValueError):
        NLayerDiscriminator(3, n_layers=0)
