"""Frozen image towers behind one interface: HF CLIP, open_clip, BriVL (weights given), a tiny random CNN.

Every tower maps ``images: float32 (B,3,H,W) RGB in [0,1]`` (any H, W) to ``(B,D)`` embeddings
(not normalised); the resize to the tower's input size and its mean/std normalisation happen
inside, differentiably, so generation can back-propagate through the tower. Towers with a text
side also map strings to ``(B,D)`` (zero-shot classification).
"""

from __future__ import annotations

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
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"image tower expects (B,3,H,W) images, got {tuple(images.shape)}")
        s = self.image_size_px
        x = images.to(self.device, torch.float32)
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False, antialias=True)  # (B,3,s,s)
        x = (x - self.mean) / self.std  # (B,3,s,s)
        return self._embed(x).float()  # (B,3,s,s)->(B,D)

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
    """An ``open_clip`` model: ``name`` = architecture ("ViT-B-32"), ``weights`` = its checkpoint file."""

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
    def from_pretrained(cls, name: str, weights: str | os.PathLike) -> OpenCLIPTower:
        try:
            import open_clip
        except ImportError as e:
            raise missing_package("open-clip-torch", "image", "the open_clip image tower") from e
        w = Path(weights).expanduser()
        if not w.is_file():
            raise MissingWeightsError(f"open_clip weights for {name} not found: {w} (set tower.weights to the "
                                      "checkpoint file, e.g. open_clip_pytorch_model.bin)")
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(w), device="cpu")
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = getattr(model.visual, "image_size", 224)
        size = size[0] if isinstance(size, tuple | list) else size
        mean = tuple(cfg.get("mean", CLIP_MEAN))
        std = tuple(cfg.get("std", CLIP_STD))
        cid = f"open_clip:{name}:{w.name}:{w.stat().st_size}"
        return cls(model, open_clip.get_tokenizer(name), mean, std, int(size), cid)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)  # (B,3,s,s)->(B,D)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)  # (B,77)
        return self.model.encode_text(tokens).float()  # (B,77)->(B,D)


def build_tower(cfg: TowerConfig, device: str | torch.device = "cpu") -> ImageTower:
    """The frozen image tower named by ``cfg`` on ``device``; MissingWeightsError when its weights are absent."""
    if cfg.kind == "tiny":
        tower: ImageTower = TinyTower(cfg.tiny_dim, cfg.tiny_image_size_px, cfg.tiny_seed)
    elif cfg.kind == "hf_clip":
        tower = HFCLIPTower.from_pretrained(cfg.name)
    elif cfg.kind == "open_clip":
        tower = OpenCLIPTower.from_pretrained(cfg.name, cfg.weights)
    elif cfg.kind == "brivl":
        w = Path(cfg.weights).expanduser()
        if not cfg.weights or not w.is_file():
            raise MissingWeightsError(f"BriVL image encoder weights not found: '{cfg.weights}' (set tower.weights "
                                      "to BriVL's checkpoint, e.g. BriVL-1.0-5500w.pth)")
        raise ConfigError("tower.kind=brivl: the BriVL image encoder (EfficientNet-B7 + box features) is not "
                          "implemented yet; use tower.kind=hf_clip or open_clip")
    else:
        raise ConfigError(f"unknown tower.kind '{cfg.kind}' (hf_clip, open_clip, brivl, tiny)")
    return tower.to(device).eval()
