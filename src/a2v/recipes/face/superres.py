"""Diffusion super-resolution 64 -> 512 px conditioned on the upsampled image and the face embedding
(paper Table 1).

diffusers' ``UNet2DConditionModel``: 64 base channels, multiples 1,2,4,8,16, res blocks 1,1,2,4,8
(Imagen's efficient U-Net layout), GroupNorm 16; at the attention levels (the coarsest, 32 px at
512) transformer blocks with self-attention and cross-attention (4 heads) to the face embedding
(one token), and the same in the middle block when the coarsest level attends. Input = noisy
high-res image concatenated with the bicubically upsampled low-res image (6 channels).
Noise-conditioning augmentation (Ho et al. 2022, "Cascaded Diffusion Models", Sec. 4.2): the
low-res condition is itself diffused to a random level during training and that level is fed to
the network (added to the time embedding as a second timestep).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2v.errors import ConfigError
from a2v.recipes.face.config import SuperResConfig


def attention_levels(cfg: SuperResConfig) -> list[bool]:
    """Per U-Net level (finest first): does it attend? ConfigError for a size that is no level."""
    n = len(cfg.channel_mult)
    sizes = [cfg.image_size_px // 2**i for i in range(n)]
    missing = sorted(set(cfg.attention_resolutions_px) - set(sizes))
    if missing:
        raise ConfigError(f"superres.attention_resolutions_px {missing} are not levels of a "
                          f"{cfg.image_size_px} px U-Net ({sizes})")
    return [s in cfg.attention_resolutions_px for s in sizes]


def unet_kwargs(cfg: SuperResConfig, embed_dim: int = 512) -> dict[str, Any]:
    """``UNet2DConditionModel`` arguments for ``cfg``; ``embed_dim``: face-embedding size (cross-attention)."""
    attn = attention_levels(cfg)
    chans = tuple(cfg.base_channels * m for m in cfg.channel_mult)
    mid = "UNetMidBlock2DCrossAttn" if attn[-1] else "UNetMidBlock2D"
    kw: dict[str, Any] = {
        "sample_size": cfg.image_size_px, "in_channels": 6, "out_channels": 3,
        "block_out_channels": chans, "layers_per_block": tuple(cfg.layers_per_block),
        "norm_num_groups": cfg.norm_groups, "dropout": cfg.dropout,
        "class_embed_type": "timestep",  # the augmentation level, embedded like a timestep
        "cross_attention_dim": embed_dim if cfg.cross_attention else 8,
    }
    if cfg.cross_attention:
        kw.update(
            down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
            up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
            mid_block_type=mid,
            # diffusers reads attention_head_dim as the number of heads for cross-attention blocks
            attention_head_dim=cfg.num_heads,
        )
    else:  # self-attention only
        kw.update(
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
            mid_block_type="UNetMidBlock2D",
            attention_head_dim=_head_dims(chans, attn, cfg.num_heads),
        )
    return kw


def _head_dims(chans: tuple[int, ...], attn: list[bool], heads: int) -> tuple[int, ...]:
    """Channels per head for each block index so every self-attention level gets ``heads`` heads.

    diffusers' ``UNet2DConditionModel`` gives up block ``i`` (level ``n-1-i``) ``attention_head_dim[i]``
    without reversing it, so index ``i`` must suit both down level ``i`` and up level ``n-1-i``.
    """
    n = len(chans)
    dims: list[int | None] = [None] * n
    for lvl, a in enumerate(attn):
        if not a:
            continue
        for i in (lvl, n - 1 - lvl):
            want = chans[lvl] // heads
            if dims[i] not in (None, want):
                raise ConfigError(f"superres: attention at these resolutions cannot all get {heads} heads "
                                  "with diffusers' UNet2DConditionModel; attend at fewer levels")
            dims[i] = want
    dims[-1] = dims[-1] or chans[-1] // heads  # mid block
    return tuple(d or c // heads for d, c in zip(dims, chans, strict=True))


def upsample(low: Tensor, size_px: int) -> Tensor:
    """Bicubic upsampling of (B,3,h,w) in [-1,1] to (B,3,size,size), clamped to [-1,1]."""
    up = F.interpolate(low, size=(size_px, size_px), mode="bicubic", align_corners=False)  # (B,3,h,w)->(B,3,S,S)
    return up.clamp(-1, 1)


class SuperResUNet(nn.Module):
    """eps-network ``(x_t (B,3,S,S), t (B,), cond (B,3,S,S) noised upsampled low-res, aug_t (B,),
    emb (B,D) face embedding) -> eps (B,3,S,S)``; ``emb`` is required when ``cfg.cross_attention``."""

    def __init__(self, cfg: SuperResConfig, embed_dim: int = 512) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.cfg, self.embed_dim = cfg, embed_dim
        self.unet = UNet2DConditionModel(**unet_kwargs(cfg, embed_dim))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, aug_t: Tensor, emb: Tensor | None = None) -> Tensor:
        h = torch.cat([x, cond.to(x.dtype)], dim=1)  # (B,3,S,S)+(B,3,S,S)->(B,6,S,S)
        ctx = None
        if self.cfg.cross_attention:
            if emb is None:
                raise ValueError("this super-resolution model attends to the face embedding: pass emb (B,D)")
            ctx = emb.to(x.dtype)[:, None, :]  # (B,D)->(B,1,D): one cross-attention token
        return self.unet(h, t, encoder_hidden_states=ctx, class_labels=aug_t).sample  # (B,3,S,S)
