"""LPIPS perceptual distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features").

Uses the ``lpips`` package (the authors' implementation, which ships the learned linear layers).
Its ImageNet backbone (AlexNet/VGG16/SqueezeNet) normally comes from a torchvision download;
here it is read from disk only: ``weights_path`` or ``<torch hub dir>/checkpoints/<file>``, and
:class:`a2v.errors.MissingWeightsError` names the file when it is absent.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

import torch
from torch import nn

from a2v.errors import InputError, missing_package
from a2v.metrics._inputs import images_float01, same_shape
from a2v.metrics.weights import find_checkpoint

Backbone = Literal["alex", "vgg", "squeeze"]

# torchvision ImageNet weights, named as torchvision saves them in the hub checkpoint folder.
BACKBONE_FILES: dict[str, str] = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
_TV_BUILDERS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def _backbone_features(net: str, path: os.PathLike) -> nn.Sequential:
    """torchvision ``<net>(weights=None).features`` filled from the state dict at ``path``.

    The file may hold the full torchvision model (features + classifier) or only ``features.*``.
    """
    import torchvision

    from a2v.metrics.weights import load_features_state

    features = getattr(torchvision.models, _TV_BUILDERS[net])(weights=None).features
    return load_features_state(features, path, f"torchvision {_TV_BUILDERS[net]} weights")


def _copy_backbone(lpips_net: nn.Module, features: nn.Sequential) -> int:
    """Copy torchvision ``features[i]`` into the LPIPS backbone slices (children named str(i)).

    Returns the number of modules copied; raises if a parameterised layer was left uncopied.
    """
    copied = 0
    for piece in lpips_net.children():  # slice1..sliceN
        for name, mod in piece.named_children():
            mod.load_state_dict(features[int(name)].state_dict())
            copied += 1
    with_params = sum(1 for m in features if any(True for _ in m.parameters(recurse=True)))
    used = sum(
        1
        for piece in lpips_net.children()
        for _, m in piece.named_children()
        if any(True for _ in m.parameters())
    )
    if used != with_params:
        raise RuntimeError(f"LPIPS backbone uses {used} of {with_params} weighted torchvision layers")
    return copied


def build_lpips(
    net: Backbone = "alex", weights_path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """LPIPS model with the shipped linear layers (v0.1) and an ImageNet backbone read from disk.

    net: backbone ("alex" as in the paper's default, "vgg", "squeeze").
    weights_path: torchvision backbone weights (e.g. ``alexnet-owt-7be5be79.pth``); default
    ``<torch hub dir>/checkpoints/<BACKBONE_FILES[net]>``. Returns an eval-mode module without
    gradients, called as ``model(x, y, normalize=True)`` on float (B,3,H,W) [0,1] -> (B,1,1,1).
    """
    if net not in BACKBONE_FILES:
        raise InputError(f"LPIPS backbone must be one of {sorted(BACKBONE_FILES)}, got {net!r}")
    path = find_checkpoint(BACKBONE_FILES[net], weights_path, f"LPIPS ({net})")
    try:
        import lpips
    except ImportError as e:
        raise missing_package("lpips", "metrics", "LPIPS") from e
    features = _backbone_features(net, path)
    with warnings.catch_warnings():
        # lpips builds its random backbone with torchvision's deprecated `pretrained=False` argument
        warnings.filterwarnings("ignore", message=".*(pretrained|weights).*", category=UserWarning)
        # shipped linear layers (pretrained=True), random backbone replaced below (pnet_rand=True)
        model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    _copy_backbone(model.net, features)
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips_distance(
    pred: Any,
    target: Any,
    model: nn.Module | None = None,
    net: Backbone = "alex",
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """LPIPS distance between image pairs; lower = more similar, 0 for identical images.

    pred, target: float (B,3,H,W) in [0,1] or uint8 (B,H,W,3) in [0,255], same shape, numpy or
    torch; H, W >= 32 for AlexNet. model: an LPIPS-style module called as
    ``model(x, y, normalize=True) -> (B,1,1,1)``; default :func:`build_lpips` (net, weights_path).
    Returns float32 on the CPU: batch mean (``"mean"``) or (B,) (``"none"``).
    """
    if reduction not in ("mean", "none"):
        raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    p, t = images_float01(pred, "pred"), images_float01(target, "target")
    same_shape(p, t)
    if model is None:
        model = build_lpips(net, weights_path, device)
    out = []
    for i in range(0, p.shape[0], batch_size):
        x, y = p[i : i + batch_size].to(device), t[i : i + batch_size].to(device)
        out.append(model(x, y, normalize=True).reshape(-1).float().cpu())  # (b,1,1,1)->(b,)
    dist = torch.cat(out)  # (B,)
    return dist.mean() if reduction == "mean" else dist
