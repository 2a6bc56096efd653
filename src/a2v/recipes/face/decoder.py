"""Face decoder: 64x64 eps-prediction U-Net conditioned on a face-identity embedding (paper Table 1).

diffusers' ``UNet2DConditionModel``: 256 base channels, multiples 1,2,3,4, 3 res blocks per level,
self-attention (4 heads) at 32, 16 and 8 px and cross-attention (4 heads) to the embedding in the
same transformer blocks, GroupNorm 32. The embedding is also projected onto the time embedding
(``embed_to_time``) as in GLIDE/Imagen. A learned ``null_cond`` (D,) is the classifier-free
guidance "no condition" token (:mod:`a2v.diffusion.guidance`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from a2v.recipes.face.config import DecoderConfig


def _levels(size_px: int, n: int, attn_px: tuple[int, ...]) -> list[bool]:
    return [size_px // 2**i in attn_px for i in range(n)]


def unet_kwargs(cfg: DecoderConfig, embed_dim: int) -> dict[str, Any]:
    """``UNet2DConditionModel`` arguments for ``cfg`` (block types per level from the attention resolutions)."""
    attn = _levels(cfg.image_size_px, len(cfg.channel_mult), cfg.attention_resolutions_px)
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
    kw: dict[str, Any] = {
        "sample_size": cfg.image_size_px, "in_channels": 3, "out_channels": 3,
        "down_block_types": down, "up_block_types": up, "mid_block_type": "UNetMidBlock2DCrossAttn",
        "block_out_channels": tuple(cfg.base_channels * m for m in cfg.channel_mult),
        "layers_per_block": tuple(cfg.layers_per_block),
        # diffusers reads attention_head_dim as the number of heads for cross-attention blocks
        "attention_head_dim": cfg.num_heads,
        "cross_attention_dim": embed_dim, "norm_num_groups": cfg.norm_groups, "dropout": cfg.dropout,
    }
    if cfg.embed_to_time:
        kw.update(class_embed_type="projection", projection_class_embeddings_input_dim=embed_dim)
    return kw


class FaceDecoder(nn.Module):
    """eps-network ``(x_t (B,3,H,W) in [-1,1] scale, t int64 (B,), emb (B,D)) -> eps (B,3,H,W)``."""

    def __init__(self, cfg: DecoderConfig, embed_dim: int) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.cfg, self.embed_dim = cfg, embed_dim
        self.unet = UNet2DConditionModel(**unet_kwargs(cfg, embed_dim))
        self.null_cond = nn.Parameter(torch.zeros(embed_dim))  # learned CFG null embedding (D,)

    def forward(self, x: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        emb = emb.to(x.dtype)
        ctx = emb[:, None, :]  # (B,D)->(B,1,D): one cross-attention token
        labels = emb if self.cfg.embed_to_time else None
        return self.unet(x, t, encoder_hidden_states=ctx, class_labels=labels).sample  # (B,3,H,W)
