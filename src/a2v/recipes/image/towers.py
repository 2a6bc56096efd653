"""Frozen image towers behind one interface: HF CLIP, open_clip, BriVL (weights given), a tiny random CNN.

Every tower maps ``images: float32 (B,3,H,W) RGB in [0,1]`` (any H, W) to ``(B,D)`` embeddings
(not normalised); the resize to the tower's input size and its mean/std normalisation happen
inside, differentiably, so generation can back-propagate through the tower. Towers with a text
side also map strings to ``(B,D)`` (zero-shot classification).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import ConfigError, InputError, MissingWeightsError, missing_package
from a2v.recipes.image.config import TowerConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP preprocessing (Radford et al. 2021)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageTower(nn.Module):
    """Base: resize + normalise, then ``_embed``. Subclasses set ``embed_dim``, ``image_size_px``, ``cache_id``."""

    embed_dim: int
    image_size_px: int
    cache_id: str = ""
    has_text: bool = False

    def __init__(self, mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def train(self, mode: bool = True) -> ImageTower:
        return super().train(False)  # always frozen: no dropout, fixed statistics

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images: float32 (B,3,H,W) RGB in [0,1] -> float32 (B,D) embeddings (gradients flow to ``images``)."""
        return self._embed(self.preprocess(images)).float()  # (B,3,H,W)->(B,3,s,s)->(B,D)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """float32 (B,3,H,W) RGB in [0,1] -> (B,3,s,s) resized (bicubic, antialiased) and normalised."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"image tower expects (B,3,H,W) images, got {tuple(images.shape)}")
        s = self.image_size_px
        x = images.to(self.device, torch.float32)
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False, antialias=True)  # (B,3,s,s)
        return (x - self.mean) / self.std  # (B,3,s,s)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """texts -> float32 (B,D); ConfigError for towers without a text side."""
        raise ConfigError(f"image tower {self.cache_id or type(self).__name__} has no text tower")


class TinyTower(ImageTower):
    """A small random CNN, frozen, seeded: (B,3,s,s) -> (B,D). For tests and CPU-sized configs."""

    def __init__(self, dim: int = 32, image_size_px: int = 32, seed: int = 0) -> None:
        super().__init__(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        self.embed_dim, self.image_size_px = int(dim), int(image_size_px)
        self.cache_id = f"tiny:d{dim}:s{image_size_px}:seed{seed}"
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.GELU(),  # (B,3,s,s)->(B,16,s/2,s/2)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),  # ->(B,32,s/4,s/4)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, dim),  # ->(B,D)
        )
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p[0].numel()) ** 0.5))
        self.requires_grad_(False)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B,3,s,s)->(B,D)


class HFCLIPTower(ImageTower):
    """transformers ``CLIPModel`` (folder or hub id in the HF cache); text side when a tokenizer is present."""

    def __init__(self, model: nn.Module, tokenizer=None, mean=CLIP_MEAN, std=CLIP_STD, cache_id: str = "") -> None:
        super().__init__(mean, std)
        self.model = model.eval().requires_grad_(False)
        self.vision_only = not hasattr(model, "get_image_features")
        self.tokenizer = None if self.vision_only else tokenizer
        self.has_text = self.tokenizer is not None
        cfg = model.config
        if self.vision_only:  # CLIPVisionModel(WithProjection): image_embeds or the pooled output
            self.embed_dim = int(getattr(cfg, "projection_dim", 0) if hasattr(model, "visual_projection")
                                 else cfg.hidden_size)
            self.image_size_px = int(cfg.image_size)
        else:
            self.embed_dim = int(cfg.projection_dim)
            self.image_size_px = int(cfg.vision_config.image_size)
        self.cache_id = cache_id

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> HFCLIPTower:
        from transformers import AutoImageProcessor, AutoTokenizer

        from a2v.encoders._hub import model_fingerprint, resolve_pretrained

        src = resolve_pretrained(name_or_path, "CLIP image tower", "tower.name")
        local = Path(src).is_dir()
        try:
            model = _load_clip(src, local)
        except OSError as e:
            raise MissingWeightsError(f"CLIP image tower {name_or_path}: no loadable weights ({e})".splitlines()[0]) from e
        try:
            tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
        except (OSError, ValueError, TypeError):
            tok = None  # image side only: zero-shot classification is skipped
        mean, std = CLIP_MEAN, CLIP_STD
        try:
            proc = AutoImageProcessor.from_pretrained(src, local_files_only=local)
            mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        except (OSError, ValueError, TypeError, AttributeError):
            pass  # no preprocessor_config.json: OpenAI CLIP statistics
        cid = f"hf_clip:{name_or_path}@{model_fingerprint(src)}" if local else f"hf_clip:{name_or_path}"
        return cls(model, tok, mean, std, cid)

    @staticmethod
    def _features(out) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 4 vs 5

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.vision_only:
            out = self.model(pixel_values=x)
            return out.image_embeds if hasattr(out, "image_embeds") else out.pooler_output  # (B,3,s,s)->(B,D)
        return self._features(self.model.get_image_features(pixel_values=x))  # (B,3,s,s)->(B,D)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            return super().encode_text(texts)
        tok = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask"))
        return self._features(out).float()  # (B,D)


def _load_clip(src: str, local: bool) -> nn.Module:
    """CLIPModel, or for a vision-only folder CLIPVisionModelWithProjection (when it has the projection)
    else CLIPVisionModel."""
    from transformers import AutoConfig, CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection

    cfg = AutoConfig.from_pretrained(src, local_files_only=local)
    if cfg.model_type != "clip_vision_model":
        return CLIPModel.from_pretrained(src, local_files_only=local)
    if "WithProjection" in "".join(getattr(cfg, "architectures", None) or []):
        return CLIPVisionModelWithProjection.from_pretrained(src, local_files_only=local)
    return CLIPVisionModel.from_pretrained(src, local_files_only=local)


class OpenCLIPTower(ImageTower):
    """An ``open_clip`` model with its text side.

    ``name``: a built-in architecture ("ViT-B-32") or the path of a model-config JSON (registered under its
    file stem), with ``weights`` = the checkpoint file; or a model folder (``local-dir:`` prefix optional)
    holding open_clip_config.json and its weights (open_clip_model.safetensors, open_clip_pytorch_model.bin...).
    """

    has_text = True

    def __init__(self, model: nn.Module, tokenizer, mean, std, image_size_px: int, cache_id: str) -> None:
        super().__init__(mean, std)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_size_px = int(image_size_px)
        self.cache_id = cache_id
        with torch.no_grad():
            self.embed_dim = int(model.encode_image(torch.zeros(1, 3, self.image_size_px, self.image_size_px)).shape[-1])

    @classmethod
    def from_pretrained(cls, name: str, weights: str | os.PathLike = "") -> OpenCLIPTower:
        try:
            import open_clip
        except ImportError as e:
            raise missing_package("open-clip-torch", "image", "the open_clip image tower") from e
        model_name, ckpt, pretrained = _resolve_open_clip(open_clip, name, weights)
        try:
            model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, device="cpu")
        except RuntimeError as e:  # unknown tag or architecture, or weights of another shape
            raise ConfigError(f"open_clip {name} with weights {ckpt}: {str(e).splitlines()[0][:300]}") from e
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = getattr(model.visual, "image_size", 224)
        size = size[0] if isinstance(size, tuple | list) else size
        mean = tuple(cfg.get("mean", CLIP_MEAN))
        std = tuple(cfg.get("std", CLIP_STD))
        cid = f"open_clip:{name}@{_file_fingerprint(ckpt)}"
        return cls(model, open_clip.get_tokenizer(model_name), mean, std, int(size), cid)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)  # (B,3,s,s)->(B,D)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)  # (B,L) token ids
        return self.model.encode_text(tokens).float()  # (B,L)->(B,D)


_OPEN_CLIP_WEIGHTS = ("*.safetensors", "*.bin", "*.pth", "*.pt")


def _resolve_open_clip(open_clip, name: str, weights: str | os.PathLike) -> tuple[str, Path, str | None]:
    """(model name for open_clip, the checkpoint file, ``pretrained`` argument) or a one-line error."""
    folder = Path(name.removeprefix("local-dir:")).expanduser()
    if name.startswith("local-dir:") or folder.is_dir():
        if not (folder / "open_clip_config.json").is_file():
            raise MissingWeightsError(f"open_clip folder {folder} has no open_clip_config.json (tower.name)")
        if weights:
            raise ConfigError(f"tower.weights is not used with an open_clip folder ({folder}): put the "
                              "checkpoint in the folder or leave tower.weights empty")
        found = sorted(f for pat in _OPEN_CLIP_WEIGHTS for f in folder.glob(pat))
        if not found:  # open_clip itself would only warn and keep random weights
            raise MissingWeightsError(f"open_clip folder {folder} has no weights file (.safetensors/.bin/.pth)")
        return f"local-dir:{folder}", found[0], None
    if name.endswith(".json"):
        cfg_file = Path(name).expanduser()
        if not cfg_file.is_file():
            raise ConfigError(f"open_clip model config not found: {cfg_file} (tower.name)")
        open_clip.add_model_config(cfg_file)  # registered under the file stem
        name = cfg_file.stem
    elif name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip architecture '{name}' (tower.name): a built-in name such as "
                          "ViT-B-32, a model-config .json, or a folder with open_clip_config.json")
    w = Path(weights).expanduser()
    if not weights or not w.is_file():
        raise MissingWeightsError(f"open_clip weights for {name} not found: '{weights}' (set tower.weights to the "
                                  "checkpoint file, e.g. open_clip_pytorch_model.bin)")
    return name, w, str(w)


def _file_fingerprint(path: Path) -> str:
    """Short hash of a weights file's name, size and first and last MiB (cheap for multi-GB files)."""
    h = hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if path.stat().st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:16]


class BriVLTower(ImageTower):
    """BriVL's image encoder (a2v.recipes.image.brivl) from its checkpoint; no text side (BriVL's text
    tower is a Chinese RoBERTa, not bundled). ``encode_image`` takes detector boxes; without them a fixed
    grid plus the whole image. ``box_source``: "detector" (training pictures get their detector boxes,
    see :func:`a2v.recipes.image.train.embed_images`) or "grid" (the fallback for every picture)."""

    def __init__(self, encoder: nn.Module, cache_id: str, box_source: str = "grid", max_boxes: int = 36) -> None:
        from a2v.recipes.image.brivl import IMAGENET_MEAN, IMAGENET_STD, default_boxes

        super().__init__(IMAGENET_MEAN, IMAGENET_STD)
        self.encoder = encoder.eval().requires_grad_(False)
        cfg = encoder.cfg
        self.embed_dim, self.image_size_px = int(cfg.feature_dim), int(cfg.image_size_px)
        self.register_buffer("grid_boxes", default_boxes(cfg.image_size_px, cfg.box_grid), persistent=False)
        self.box_source, self.max_boxes = box_source, int(max_boxes)
        self.cache_id = f"{cache_id}:boxes={box_source}"

    @classmethod
    def from_pretrained(cls, cfg: TowerConfig) -> BriVLTower:
        from a2v.recipes.image.brivl import load_brivl_encoder
        from a2v.weight_files import resolve_weight_file

        # a path, or a bare name looked up in the working folder, then the torch hub folder (the rule of `a2v info`)
        weights = resolve_weight_file(cfg.weights, what="BriVL image encoder checkpoint (e.g. BriVL-1.0-5500w.pth)",
                                      key="tower.weights")
        enc = load_brivl_encoder(weights, backbone=cfg.brivl_backbone, image_size_px=cfg.brivl_image_size_px,
                                 num_heads=cfg.brivl_num_heads, grid_size=cfg.brivl_grid_size,
                                 box_grid=cfg.brivl_box_grid)
        c = enc.cfg
        cid = (f"brivl:{c.backbone}:s{c.image_size_px}:h{c.num_heads}:g{c.grid_size}:b{c.box_grid}"
               f"@{_file_fingerprint(weights)}")
        return cls(enc, cid, cfg.brivl_boxes, cfg.brivl_max_boxes)

    def encode_image(self, images: torch.Tensor, boxes: torch.Tensor | None = None,
                     box_mask: torch.Tensor | None = None) -> torch.Tensor:
        """images: float32 (B,3,H,W) RGB in [0,1]; boxes: optional float (B,N,4) x1,y1,x2,y2 as fractions of
        width and height in [0,1] (detector boxes; the whole image is always appended, as in BriVL);
        box_mask: optional bool (B,N), False = padding -> float32 (B,D). Without boxes: the default grid."""
        x = self.preprocess(images)  # (B,3,H,W)->(B,3,s,s)
        b, s = x.shape[0], float(self.image_size_px)
        whole = torch.tensor([0.0, 0.0, s, s], device=x.device).expand(b, 1, 4)  # (B,1,4)
        if boxes is None:
            px = self.grid_boxes.to(x.device).expand(b, -1, 4)  # (B,N,4)
            mask = torch.ones(px.shape[:2], dtype=torch.bool, device=x.device)  # (B,N)
        else:
            if boxes.ndim != 3 or boxes.shape[0] != b or boxes.shape[-1] != 4:
                raise InputError(f"BriVL boxes must be (B,N,4) for {b} images, got {tuple(boxes.shape)}")
            px = torch.cat([boxes.to(x.device, torch.float32) * s, whole], dim=1)  # (B,N,4)->(B,N+1,4)
            given = (torch.ones(boxes.shape[:2], dtype=torch.bool) if box_mask is None
                     else box_mask.to(torch.bool).cpu())  # (B,N)
            mask = torch.cat([given, torch.ones(b, 1, dtype=torch.bool)], dim=1).to(x.device)  # (B,N+1)
        return self.encoder(x, px, mask).float()  # (B,3,s,s)->(B,D)


def build_tower(cfg: TowerConfig, device: str | torch.device = "cpu") -> ImageTower:
    """The frozen image tower named by ``cfg`` on ``device``; MissingWeightsError when its weights are absent."""
    if cfg.kind == "tiny":
        tower: ImageTower = TinyTower(cfg.tiny_dim, cfg.tiny_image_size_px, cfg.tiny_seed)
    elif cfg.kind == "hf_clip":
        tower = HFCLIPTower.from_pretrained(cfg.name)
    elif cfg.kind == "open_clip":
        tower = OpenCLIPTower.from_pretrained(cfg.name, cfg.weights)
    elif cfg.kind == "brivl":
        if not cfg.weights:
            raise MissingWeightsError("BriVL image encoder weights not given (set tower.weights to BriVL's "
                                      "checkpoint, e.g. BriVL-1.0-5500w.pth)")
        tower = BriVLTower.from_pretrained(cfg)
    else:
        raise ConfigError(f"tower.kind '{cfg.kind}' is not a tower (hf_clip, open_clip, brivl, tiny)")
    return tower.to(device).eval()
