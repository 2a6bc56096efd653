"""VGG19 perceptual loss as in pix2pixHD (Wang et al. 2018, Sec. 3.2 "Improved adversarial loss",
``VGGLoss``; after Johnson et al. 2016 and Dosovitskiy & Brox 2016).

loss(x, y) = sum_k w_k * L1(phi_k(x), phi_k(y).detach()), phi_k = relu1_1, relu2_1, relu3_1,
relu4_1, relu5_1 of an ImageNet VGG19, w = [1/32, 1/16, 1/8, 1/4, 1].

The VGG19 weights are torchvision's ImageNet file, read from disk only: ``weights_path`` or
``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``; when absent,
:class:`a2v.errors.MissingWeightsError` names the file and the folder (no download is attempted).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from a2v.metrics.weights import find_checkpoint

# torchvision VGG19_Weights.IMAGENET1K_V1, named as torch.hub saves it in <hub dir>/checkpoints
VGG19_FILE = "vgg19-dcbb9e9d.pth"
# torchvision ``vgg19().features`` index ranges ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
PIX2PIXHD_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_trunk() -> nn.Sequential:
    """torchvision VGG19 ``features[:30]`` (up to relu5_1) with random weights; same layer indices."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["E"], batch_norm=False)[: VGG19_SLICES[-1][1]]


def load_vgg19_trunk(path: str | os.PathLike) -> nn.Sequential:
    """:func:`vgg19_trunk` filled from a torchvision VGG19 state dict at ``path``.

    The file may hold the full model (``features.*`` + ``classifier.*``) or only ``features.*``.
    """
    from a2v.metrics.weights import load_features_state

    # conv5_2..conv5_4 of the file are not part of the trunk
    return load_features_state(vgg19_trunk(), path, "torchvision VGG19 weights", only_needed=True)


class VGGPerceptualLoss(nn.Module):
    """pix2pixHD VGG loss between generated and real images.

    trunk: a VGG19 ``features[:30]`` module; default read from ``weights_path`` or the torch hub
    checkpoint folder (:data:`VGG19_FILE`), MissingWeightsError when absent.
    imagenet_normalize: False (pix2pixHD) feeds the [-1,1] images as they are; True maps them to
    ImageNet mean/std first, as torchvision's weights expect.
    forward(x, y): float (B,3,H,W) in [-1,1] each -> float scalar; gradients flow into ``x`` only.
    The VGG weights are frozen and kept in eval mode.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        trunk: nn.Sequential | None = None,
        layer_weights: tuple[float, ...] = PIX2PIXHD_VGG_WEIGHTS,
        imagenet_normalize: bool = False,
    ) -> None:
        super().__init__()
        if trunk is None:
            trunk = load_vgg19_trunk(find_checkpoint(VGG19_FILE, weights_path, "VGG19 perceptual loss"))
        if len(layer_weights) != len(VGG19_SLICES):
            raise ValueError(f"need {len(VGG19_SLICES)} layer weights, got {len(layer_weights)}")
        self.slices = nn.ModuleList(trunk[a:b] for a, b in VGG19_SLICES)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        """The VGG stays in eval mode whatever the surrounding module does."""
        return super().train(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """float (B,3,H,W) in [-1,1] -> [relu1_1 (B,64,H,W), relu2_1 (B,128,H/2,W/2), ..., relu5_1 (B,512,H/16,W/16)]."""
        if self.imagenet_normalize:
            x = ((x + 1.0) / 2.0 - self.mean) / self.std
        out = []
        for s in self.slices:
            x = s(x)  # (B,C,h,w)->(B,C',h/2,w/2) after each pooling
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features(x)
        with torch.no_grad():
            fy = self.features(y)
        return torch.stack(
            [w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, fx, fy, strict=True)]
        ).sum()
