"""PatchGAN and multi-scale discriminators (pix2pixHD, Wang et al. 2018, Sec. 3.2 "Multi-scale
discriminators"; PatchGAN from Isola et al. 2017).

:class:`MultiscaleDiscriminator` runs ``num_D`` identical PatchGANs on the input average-pooled
0, 1, ..., num_D-1 times and returns, per scale, the list of every layer's output (the last one is
the real/fake patch map), so the generator can use them for feature matching (Sec. 3.2, eq. 4).
Written from the paper: no maintained library ships these discriminators.
"""

from __future__ import annotations

import torch
from torch import nn

from a2v.gan.pix2pixhd import init_pix2pixhd_weights


class NLayerDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, LeakyReLU 0.2, instance norm (not on the first or last layer).

    Layers (pix2pixHD ``NLayerDiscriminator``): conv ndf s2; ``n_layers - 1`` convs s2 doubling
    channels (capped at 512); one conv s1 doubling again; a 1-channel conv s1 (no sigmoid: the
    losses take raw scores). Padding 2 with 4x4 kernels, as upstream.
    forward: float (B,C,H,W) -> list of ``n_layers + 2`` feature maps, the last (B,1,h,w) scores.
    """

    def __init__(self, input_channels: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        kw, pad = 4, 2
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(input_channels, ndf, kw, stride=2, padding=pad), nn.LeakyReLU(0.2, True))
        ]
        nf = ndf
        for n in range(1, n_layers + 1):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers else 1  # the last hidden conv keeps the resolution
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=pad),
                    nn.InstanceNorm2d(nf, affine=False),
                    nn.LeakyReLU(0.2, True),
                )
            )
        blocks.append(nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=pad)))
        self.blocks = nn.ModuleList(blocks)
        init_pix2pixhd_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)  # (B,C,h,w)->(B,C',h/2+1,w/2+1) stride 2; (B,C',h+1,w+1) stride 1 (4x4, pad 2)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on an image pyramid (pix2pixHD D1, D2, D3).

    input_channels: channels of what is judged (for a conditional D: map channels + 3).
    forward: float (B,C,H,W) -> ``num_D`` lists (scale 0 = full resolution, then halved each time)
    of ``n_layers + 2`` tensors each; ``out[i][-1]`` is the (B,1,h_i,w_i) patch score map.
    """

    def __init__(self, input_channels: int, ndf: int = 64, n_layers: int = 3, num_D: int = 3) -> None:
        super().__init__()
        if num_D < 1:
            raise ValueError(f"num_D must be >= 1, got {num_D}")
        self.num_D = num_D
        self.n_layers = n_layers
        self.scales = nn.ModuleList(NLayerDiscriminator(input_channels, ndf, n_layers) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            out.append(d(x))
            if i != self.num_D - 1:
                x = self.downsample(x)  # (B,C,H,W)->(B,C,H/2,W/2)
        return out
