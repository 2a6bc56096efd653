"""pix2pixHD generators: output shapes and range at 128/256, local enhancer wiring, size checks."""

from __future__ import annotations

import pytest
import torch

from a2v.gan.pix2pixhd import GlobalGenerator, LocalEnhancer, build_generator, size_multiple


@pytest.mark.parametrize("size", [128, 256])
def test_global_generator_shape_and_range(size: int) -> None:
    torch.manual_seed(0)
    g = GlobalGenerator(3, 3, ngf=8, n_downsample=3, n_blocks=1)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, size, size)
    assert y.min() >= -1 and y.max() <= 1
    assert y.std() > 0  # not a constant output


def test_global_generator_channels_follow_pix2pixhd() -> None:
    g = GlobalGenerator(10, 3, ngf=4, n_downsample=2, n_blocks=2)
    convs = [m for m in g.features if isinstance(m, torch.nn.Conv2d)]
    # c7s1-4, d8, d16, 2 residual blocks x 2 convs at 16 channels
    assert [c.out_channels for c in convs] == [4, 8, 16]
    assert g.features[0].__class__.__name__ == "ReflectionPad2d"
    assert all(isinstance(m, torch.nn.InstanceNorm2d) and not m.affine
               for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d))
    assert g(torch.zeros(1, 10, 32, 32)).shape == (1, 3, 32, 32)


def test_generator_without_head_returns_features() -> None:
    g = GlobalGenerator(3, 3, ngf=8, n_downsample=2, n_blocks=1, final_layers=False)
    assert g(torch.zeros(1, 3, 32, 32)).shape == (1, 8, 32, 32)


@pytest.mark.parametrize("levels", [1, 2])
def test_local_enhancer_shape(levels: int) -> None:
    torch.manual_seed(0)
    g = LocalEnhancer(3, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=levels,
                      n_blocks_local=1)
    # the global generator works at 1/2^L resolution with ngf * 2^L channels (pix2pixHD define_G)
    assert g.global_generator.features[1].out_channels == 4 * 2**levels
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    y = g(x)
    assert y.shape == (1, 3, 128, 128)
    assert y.min() >= -1 and y.max() <= 1


def test_local_enhancer_uses_full_resolution_input() -> None:
    """A change of one full-resolution pixel reaches the output through the enhancer branch."""
    torch.manual_seed(0)
    g = LocalEnhancer(3, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1,
                      n_blocks_local=1).double()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64, requires_grad=True)
    g(x)[0, :, 31, 31].sum().backward()
    assert x.grad.abs().sum() > 0
    # and the coarse (global) branch sees the whole picture: gradient reaches far pixels
    assert x.grad[0, :, :8, :8].abs().sum() > 0


def test_build_generator_picks_the_architecture() -> None:
    assert isinstance(build_generator(3, ngf=4, n_downsample_global=2, n_blocks_global=1), GlobalGenerator)
    assert isinstance(build_generator(3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1,
                                      n_blocks_local=1), LocalEnhancer)
    assert size_multiple(4) == 16 and size_multiple(3, 1) == 16


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError):
        GlobalGenerator(3, n_blocks=-1)
    with pytest.raises(ValueError):
        LocalEnhancer(3, n_local_enhancers=0)
