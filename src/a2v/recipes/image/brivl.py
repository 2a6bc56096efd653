"""BriVL's image encoder (Huo et al. 2021, "WenLan: Bridging Vision and Language by Large-Scale
Multi-Modal Pre-Training", arXiv:2103.06561), laid out so the released checkpoint
(BriVL-1.0-5500w.pth) loads with strict key matching.

EfficientNet feature map -> RoI grid pooling of each box (bilinear samples on a ``grid_size`` x
``grid_size`` grid inside the box, 1x1 conv, average) -> L2 normalise -> Transformer encoder
(self-attention across the boxes, padded boxes masked) -> mean over the valid boxes -> two-layer
MLP ("FakeTransformer") -> ``feature_dim`` joint space. Parameter names follow the public
inference code (``backbone.*`` = timm EfficientNet, ``learnable.imgFC`` / ``learnable.imgAtt`` /
``learnable.max_pool``); checkpoints store them under ``learnable.imgencoder.``.

Boxes: BriVL fed up to 36 bottom-up-attention detector boxes plus the whole image. No such detector
ships here, so without boxes the encoder uses a fixed ``box_grid`` x ``box_grid`` grid of boxes plus
the whole image (6 x 6 + 1 = 37, BriVL's MAX_IMG_LEN); pass detector boxes for the original behaviour.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import ConfigError, InputError, missing_package
from a2v.recipes.image.ckpt import load_strict

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # BriVL's preprocessing (torchvision Normalize)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Released checkpoints: joint width -> (timm backbone, input side). BriVL-1.0's inference config uses
# tf_efficientnet_b5_ns at 456 px with 2048-d features; the paper describes EfficientNet-B7 (2560-d).
_BACKBONE_BY_DIM = {2048: ("tf_efficientnet_b5", 456), 2560: ("tf_efficientnet_b7", 380)}


@dataclass(frozen=True)
class BriVLConfig:
    """Shape of BriVL's image encoder. Defaults = the released BriVL-1.0 checkpoint's inference config
    (CNN tf_efficientnet_b5_ns, IMG_SIZE 456, IMG_FEATURE_DIM 2048, 4 heads, 4 layers, GRID_SIZE 4);
    :meth:`paper` gives the paper's EfficientNet-B7 / 2560-d shape."""

    backbone: str = "tf_efficientnet_b5"  # a timm EfficientNet name (architecture only, no download)
    image_size_px: int = 456  # square input side; boxes are in pixels of this square
    feature_dim: int = 2048  # = the backbone's num_features = the joint embedding width
    num_heads: int = 4
    num_layers: int = 4
    grid_size: int = 4  # bilinear samples per box side in RoI grid pooling
    box_grid: int = 6  # default boxes: box_grid x box_grid cells + the whole image (0: whole image only)

    @classmethod
    def paper(cls) -> BriVLConfig:
        """The paper's shape: EfficientNet-B7 backbone, 2560-d joint space (input side 380 px, unverified)."""
        return cls(backbone="tf_efficientnet_b7", image_size_px=380, feature_dim=2560)


class FakeTransformer(nn.Module):
    """BriVL's projection head: Linear-ReLU-Linear, (..., D_in) -> (..., D_out)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))  # (...,D)->(...,D)


def build_backbone(name: str) -> nn.Module:
    """A timm model by name with random weights (the checkpoint supplies them); lazily imported."""
    try:
        import timm
    except ImportError as e:
        raise missing_package("timm", "image", "the BriVL image encoder") from e
    try:
        return timm.create_model(name, pretrained=False)
    except RuntimeError as e:  # timm: "Unknown model (...)"
        raise ConfigError(f"BriVL backbone '{name}' is not a timm model ({e}); set tower.brivl_backbone") from e


class BriVLImageEncoder(nn.Module):
    """images: float32 (B,3,s,s) normalised with ImageNet mean/std; boxes: float32 (B,N,4) x1,y1,x2,y2 in
    pixels of the s x s input; mask: bool (B,N), True = a real box -> float32 (B,D) (not normalised)."""

    def __init__(self, cfg: BriVLConfig = BriVLConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.backbone)
        width = int(getattr(self.backbone, "num_features", -1))
        if width != cfg.feature_dim:
            raise ConfigError(f"BriVL backbone {cfg.backbone} gives {width}-d features, the encoder expects "
                              f"{cfg.feature_dim} (set tower.brivl_backbone to the checkpoint's backbone)")
        d = cfg.feature_dim
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=cfg.num_heads)  # torch defaults, as BriVL: FF 2048, post-norm
        self.learnable = nn.ModuleDict({
            "imgFC": FakeTransformer(d, d, d),
            "imgAtt": nn.TransformerEncoder(layer, num_layers=cfg.num_layers, enable_nested_tensor=False),
            "max_pool": nn.Sequential(nn.Conv2d(d, d, kernel_size=1), nn.AvgPool2d(cfg.grid_size, stride=1)),
        })

    def roi_grid_pool(self, fmap: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """fmap (B,C,h,w), boxes (B,N,4) input pixels -> (B,N,C): each box sampled bilinearly on a g x g grid
        (an affine grid per box, as BriVL's roi_grid_pool), then 1x1 conv + g x g average."""
        b, c, h, w = fmap.shape
        n, g = boxes.shape[1], self.cfg.grid_size
        ratio = self.cfg.image_size_px / h  # BriVL maps both axes with the height ratio (square inputs)
        x1, y1, x2, y2 = (boxes.detach().float() / ratio).unbind(-1)  # (B,N) each, feature-map units
        zero = torch.zeros_like(x1)
        theta = torch.stack([(x2 - x1) / (w - 1), zero, (x1 + x2 - w + 1) / (w - 1),
                             zero, (y2 - y1) / (h - 1), (y1 + y2 - h + 1) / (h - 1)], -1)  # (B,N,6)
        grid = F.affine_grid(theta.view(b * n, 2, 3), [b * n, c, g, g], align_corners=False)  # (B*N,g,g,2)
        # All boxes of an image sampled in one call, stacked along the grid's height: the same values as
        # BriVL's per-image loop over a feature map expanded N times, without the N copies.
        grid = grid.view(b, n * g, g, 2)  # (B,N*g,g,2)
        pooled = F.grid_sample(fmap, grid.to(fmap.dtype), mode="bilinear", padding_mode="zeros",
                               align_corners=False)  # (B,C,N*g,g)
        pooled = pooled.view(b, c, n, g, g).permute(0, 2, 1, 3, 4).reshape(b * n, c, g, g)  # (B*N,C,g,g)
        return self.learnable["max_pool"](pooled).view(b, n, c)  # (B*N,C,g,g)->(B,N,C)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        fmap = self.backbone.forward_features(images)  # (B,3,s,s)->(B,C,h,w)
        feats = F.normalize(self.roi_grid_pool(fmap, boxes), p=2, dim=-1)  # (B,N,C)
        feats = self.learnable["imgAtt"](feats.transpose(0, 1), src_key_padding_mask=~mask).transpose(0, 1)  # (B,N,C)
        m = mask.to(feats.dtype).unsqueeze(-1)  # (B,N,1)
        pooled = (feats * m).sum(dim=1) / m.sum(dim=1)  # masked mean: (B,N,C)->(B,C)
        return self.learnable["imgFC"](pooled)  # (B,C)->(B,D)


def default_boxes(image_size_px: int, box_grid: int) -> torch.Tensor:
    """float32 (box_grid**2 + 1, 4) pixel boxes x1,y1,x2,y2: a box_grid x box_grid grid of cells (row-major)
    then the whole image. Stands in for BriVL's detector boxes, which no bundled detector provides."""
    s = float(image_size_px)
    edges = torch.linspace(0.0, s, box_grid + 1)  # (G+1,)
    cells = [(edges[i], edges[j], edges[i + 1], edges[j + 1]) for j in range(box_grid) for i in range(box_grid)]
    rows = [torch.stack(c) for c in cells] + [torch.tensor([0.0, 0.0, s, s])]
    return torch.stack(rows).float()  # (G*G+1,4)


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The image-encoder tensors of a BriVL checkpoint, keys relative to the encoder ("backbone.*",
    "learnable.*"). Accepts the released .pth ({"learnable": {"imgencoder.…": …}}), a plain or
    "module."-prefixed state dict, or a .safetensors file with the same keys."""
    from a2v.weight_files import resolve_weight_file

    # a path, or a bare name looked up in the working folder, then the torch hub folder (the rule of `a2v info`)
    p = resolve_weight_file(path, what="BriVL image encoder checkpoint (e.g. BriVL-1.0-5500w.pth)", key="tower.weights")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw: object = load_file(str(p))
    else:
        try:
            raw = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise InputError(f"BriVL checkpoint {p} holds Python objects besides tensors, which are not loaded "
                             "(torch.load weights_only=True): save its 'learnable' state dict alone with torch.save "
                             "or as .safetensors") from e
    state = raw
    for key in ("learnable", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise InputError(f"BriVL checkpoint {p} is not a state dict (got {type(state).__name__})")
    out = {}
    for k, v in state.items():
        k = re.sub(r"^(module\.)?(learnable\.)?", "", str(k))
        if k.startswith("imgencoder.") and isinstance(v, torch.Tensor):  # not imgencoder_mom.* (momentum copy)
            out[k[len("imgencoder."):]] = v
    if not out:
        raise InputError(f"BriVL checkpoint {p} has no image-encoder tensors (keys 'learnable.imgencoder.*')")
    return out


def config_from_state(state: dict[str, torch.Tensor], backbone: str = "", image_size_px: int = 0,
                      num_heads: int = 4, grid_size: int = 4, box_grid: int = 6) -> BriVLConfig:
    """The encoder shape a checkpoint's tensors imply: width from the head, layer count from the keys,
    backbone and input size from the width (2048: B5 at 456 px, 2560: B7) unless given."""
    if "learnable.imgFC.fc1.weight" not in state:
        raise InputError("BriVL checkpoint lacks learnable.imgFC.fc1.weight: not a BriVL image encoder")
    dim = int(state["learnable.imgFC.fc1.weight"].shape[1])
    layers = {int(m.group(1)) for k in state if (m := re.match(r"learnable\.imgAtt\.layers\.(\d+)\.", k))}
    known_name, known_size = _BACKBONE_BY_DIM.get(dim, ("", 0))
    name = backbone or known_name
    if not name:
        raise ConfigError(f"BriVL checkpoint has {dim}-d features and no known backbone: set tower.brivl_backbone "
                          "(a timm EfficientNet name)")
    size = image_size_px or (known_size if name == known_name else 0)
    if not size:
        raise ConfigError(f"BriVL backbone {name}: set tower.brivl_image_size_px (the input side it was trained at)")
    return BriVLConfig(backbone=name, image_size_px=int(size), feature_dim=dim, num_heads=int(num_heads),
                       num_layers=len(layers), grid_size=int(grid_size), box_grid=int(box_grid))


def load_brivl_encoder(path: str | os.PathLike, **overrides) -> BriVLImageEncoder:
    """Build the encoder the checkpoint at ``path`` implies (``overrides``: see :func:`config_from_state`)
    and load its tensors with strict key matching; returns it in eval mode on CPU."""
    state = read_checkpoint(path)
    enc = BriVLImageEncoder(config_from_state(state, **overrides))
    load_strict(enc, state, f"BriVL checkpoint {path} does not fit backbone {enc.cfg.backbone}",
                "set tower.brivl_backbone")
    return enc.eval()
