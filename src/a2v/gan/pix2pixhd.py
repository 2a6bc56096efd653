"""pix2pixHD generators (Wang et al. 2018, "High-Resolution Image Synthesis and Semantic
Manipulation with Conditional GANs", Sec. 3.2, Fig. 3).

- :class:`GlobalGenerator` G1: c7s1-ngf, ``n_downsample`` stride-2 convs (d2ngf, d4ngf, ...),
  ``n_blocks`` residual blocks, as many transposed-conv upsamplings, c7s1-out, tanh. Reflection
  padding, instance norm without affine parameters (the paper's choices).
- :class:`LocalEnhancer` G2: one or more enhancer levels wrapping G1 at half the resolution each;
  G1's last layers are removed and its features are *summed* with the enhancer's front-end
  features (Fig. 3).

Input and output are float (B,C,H,W); the output is in [-1,1] (tanh). H and W must be
divisible by ``2 ** (n_downsample + n_local_enhancers)`` (:func:`size_multiple`).
Written from the paper: torchvision/diffusers do not ship these networks.
"""

from __future__ import annotations

import torch
from torch import nn


def init_pix2pixhd_weights(module: nn.Module) -> None:
    """pix2pixHD initialisation: conv weights ~ N(0, 0.02), biases untouched (``networks.weights_init``)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)


def _norm(channels: int) -> nn.Module:
    """Instance norm without learnt affine, without running stats (pix2pixHD ``--norm instance``)."""
    return nn.InstanceNorm2d(channels, affine=False)


class ResnetBlock(nn.Module):
    """x + [pad1, conv3, IN, ReLU, pad1, conv3, IN](x); shape-preserving (B,C,H,W)->(B,C,H,W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _c7s1(in_channels: int, out_channels: int) -> list[nn.Module]:
    """7x7 conv, stride 1, reflection pad 3, IN, ReLU: (B,Cin,H,W)->(B,Cout,H,W)."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, 7), _norm(out_channels), nn.ReLU(True)]


def _down(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 conv stride 2, IN, ReLU: (B,Cin,H,W)->(B,Cout,H/2,W/2)."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), _norm(out_channels), nn.ReLU(True)]


def _up(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 transposed conv stride 2, IN, ReLU: (B,Cin,H,W)->(B,Cout,2H,2W)."""
    return [
        nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
        _norm(out_channels),
        nn.ReLU(True),
    ]


def _to_image(channels: int, out_channels: int) -> nn.Sequential:
    """Final c7s1 conv + tanh: (B,C,H,W)->(B,out,H,W) in [-1,1]."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh())


class GlobalGenerator(nn.Module):
    """pix2pixHD G1 (paper Sec. 3.2; Johnson et al. 2016 architecture).

    input_channels: channels of the conditioning map; output_channels: 3 for RGB.
    ngf: channels of the first layer, doubled at each of ``n_downsample`` stride-2 convs.
    n_blocks: residual blocks at the bottleneck (9 in the paper).
    final_layers: False drops the last c7s1 conv + tanh (used inside :class:`LocalEnhancer`);
    ``forward`` then returns features (B,ngf,H,W).
    forward: float (B,input_channels,H,W) -> float (B,output_channels,H,W) in [-1,1].
    """

    def __init__(
        self,
        input_channels: int,
        output_channels: int = 3,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        final_layers: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0 or n_downsample < 0:
            raise ValueError(f"n_blocks and n_downsample must be >= 0, got {n_blocks}, {n_downsample}")
        self.n_downsample = n_downsample
        layers: list[nn.Module] = _c7s1(input_channels, ngf)  # (B,Cin,H,W)->(B,ngf,H,W)
        for i in range(n_downsample):  # (B,ngf*2^i,h,w)->(B,ngf*2^(i+1),h/2,w/2)
            layers += _down(ngf * 2**i, ngf * 2 ** (i + 1))
        bottleneck = ngf * 2**n_downsample
        layers += [ResnetBlock(bottleneck) for _ in range(n_blocks)]
        for i in range(n_downsample, 0, -1):  # (B,ngf*2^i,h,w)->(B,ngf*2^(i-1),2h,2w)
            layers += _up(ngf * 2**i, ngf * 2 ** (i - 1))
        self.features = nn.Sequential(*layers)  # (B,Cin,H,W)->(B,ngf,H,W)
        self.to_image = _to_image(ngf, output_channels) if final_layers else None
        init_pix2pixhd_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B,Cin,H,W)->(B,ngf,H,W)
        return h if self.to_image is None else self.to_image(h)  # (B,ngf,H,W)->(B,out,H,W)


class EnhancerLevel(nn.Module):
    """One local-enhancer level (paper Fig. 3, G2).

    front: c7s1-ngf then a stride-2 conv to 2*ngf: map (B,Cin,H,W)->(B,2ngf,H/2,W/2).
    back: ``n_blocks`` residual blocks on (front + coarser features), then a transposed conv:
    (B,2ngf,H/2,W/2)->(B,ngf,H,W); the finest level adds the c7s1-out + tanh image head.
    """

    def __init__(self, input_channels: int, ngf: int, n_blocks: int, output_channels: int | None) -> None:
        super().__init__()
        self.front = nn.Sequential(*_c7s1(input_channels, ngf), *_down(ngf, 2 * ngf))
        back: list[nn.Module] = [ResnetBlock(2 * ngf) for _ in range(n_blocks)]
        back += _up(2 * ngf, ngf)
        self.back = nn.Sequential(*back)
        self.to_image = None if output_channels is None else _to_image(ngf, output_channels)

    def forward(self, x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """x: map (B,Cin,H,W) at this level; coarse: features (B,2ngf,H/2,W/2) from the level below."""
        h = self.back(self.front(x) + coarse)  # (B,Cin,H,W)->(B,2ngf,H/2,W/2)->(B,ngf,H,W); sum of features (Fig. 3)
        return h if self.to_image is None else self.to_image(h)  # (B,ngf,H,W)->(B,out,H,W)


class LocalEnhancer(nn.Module):
    """pix2pixHD G = {G1, G2, ...} (paper Sec. 3.2): coarse-to-fine generator.

    The global generator runs on the map average-pooled ``n_local_enhancers`` times with
    ``ngf * 2**n_local_enhancers`` first-layer channels and no image head; level n (1 = coarsest
    enhancer) has ``ngf * 2**(n_local_enhancers - n)`` channels and ``n_blocks_local`` residual blocks.
    forward: float (B,input_channels,H,W) -> float (B,output_channels,H,W) in [-1,1].
    """

    def __init__(
        self,
        input_channels: int,
        output_channels: int = 3,
        ngf: int = 32,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
    ) -> None:
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError(f"LocalEnhancer needs n_local_enhancers >= 1, got {n_local_enhancers}")
        self.n_local_enhancers = n_local_enhancers
        self.n_downsample = n_downsample_global
        self.global_generator = GlobalGenerator(
            input_channels, output_channels, ngf * 2**n_local_enhancers, n_downsample_global, n_blocks_global,
            final_layers=False,
        )
        self.levels = nn.ModuleList(
            EnhancerLevel(
                input_channels,
                ngf * 2 ** (n_local_enhancers - n),
                n_blocks_local,
                output_channels if n == n_local_enhancers else None,
            )
            for n in range(1, n_local_enhancers + 1)
        )
        # 3x3 average pool, stride 2, as pix2pixHD builds its input pyramid
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        init_pix2pixhd_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]  # pyramid[k]: (B,Cin,H/2^k,W/2^k)
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))  # (B,Cin,h,w)->(B,Cin,h/2,w/2)
        h = self.global_generator(pyramid[-1])  # (B,Cin,H/2^L,W/2^L)->(B,ngf*2^L,H/2^L,W/2^L)
        for n, level in enumerate(self.levels, start=1):
            h = level(pyramid[self.n_local_enhancers - n], h)  # ->(B,ngf*2^(L-n),H/2^(L-n),W/2^(L-n)); last: image
        return h


def size_multiple(n_downsample_global: int, n_local_enhancers: int = 0) -> int:
    """H and W of the generator input must be multiples of this (each stride-2 halving must be exact)."""
    return 2 ** (n_downsample_global + n_local_enhancers)


def build_generator(
    input_channels: int,
    output_channels: int = 3,
    ngf: int = 64,
    n_downsample_global: int = 4,
    n_blocks_global: int = 9,
    n_local_enhancers: int = 0,
    n_blocks_local: int = 3,
) -> GlobalGenerator | LocalEnhancer:
    """pix2pixHD ``define_G``: a GlobalGenerator when ``n_local_enhancers == 0``, else a LocalEnhancer."""
    if n_local_enhancers == 0:
        return GlobalGenerator(input_channels, output_channels, ngf, n_downsample_global, n_blocks_global)
    return LocalEnhancer(
        input_channels, output_channels, ngf, n_downsample_global, n_blocks_global, n_local_enhancers, n_blocks_local
    )
