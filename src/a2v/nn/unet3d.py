"""Space-time (3-D) U-Net for video diffusion, with time-aware layers and cross-attention.

Layout after Ho et al. 2022, "Video Diffusion Models" §3 (a 2-D U-Net factorised over space
and time: spatial convolutions and attention per frame, temporal convolutions and attention
per pixel, frames never downsampled) and Ronneberger et al. 2015 (skip connections).
"Time-aware" layers, as in Yang et al. 2024 (ultrasound tongue imaging from speech, §2.3):
every residual block is modulated per frame (FiLM, Perez et al. 2018) by the noise-level
embedding plus that frame's condition vector, and cross-attention lets each pixel of frame f
attend to the condition frames within ``cross_window`` frames of f (all frames when None).

Written here because diffusers' ``UNet3DConditionModel`` gives every frame the same
cross-attention context and has no per-frame modulation, which frame-aligned speech needs.

Shapes: ``x`` float32 (B,C,F,H,W), H and W divisible by ``2 ** (len(channel_mults) - 1)``;
any F. ``c_noise`` (B,) or a scalar (e.g. EDM's ln(sigma)/4); ``cond`` (B,T,Dc) condition
frames (T == F enables the per-frame FiLM; any T for cross-attention), or None (unconditional:
the classifier-free-guidance "null" condition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from a2v.nn.attention import MultiHeadAttention, sinusoidal_embedding

__all__ = ["UNet3D", "ResBlock3D", "SpaceTimeAttention", "FrameConv", "TemporalConv"]


class FrameConv(nn.Module):
    """2-D convolution of every frame: ``(B,Ci,F,H,W) -> (B,Co,F,H',W')``.

    Same maths as ``nn.Conv3d`` with a (1,k,k) kernel, run as ``nn.Conv2d`` over B*F frames
    because torch's CPU Conv3d falls back to a slow im2col kernel (slow_conv3d).
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, Fr, H, W = x.shape
        y = self.conv(x.transpose(1, 2).reshape(B * Fr, C, H, W))  # (B,C,F,H,W)->(BF,Co,H',W')
        return y.reshape(B, Fr, *y.shape[1:]).transpose(1, 2)  # (BF,Co,H',W')->(B,Co,F,H',W')


class TemporalConv(nn.Module):
    """1-D convolution along frames at every pixel: ``(B,C,F,H,W) -> (B,C,F,H,W)`` ('same' padding)."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, Fr, H, W = x.shape
        y = self.conv(x.permute(0, 3, 4, 1, 2).reshape(B * H * W, C, Fr))  # (B,C,F,H,W)->(BHW,C,F)
        return y.reshape(B, H, W, C, Fr).permute(0, 3, 4, 1, 2)  # (BHW,C,F)->(B,C,F,H,W)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock3D(nn.Module):
    """(2+1)-D residual block: spatial 3x3 conv, temporal conv (zero-initialised), per-frame FiLM, spatial conv.

    ``forward(x (B,Ci,F,H,W), emb (B,F,E)) -> (B,Co,F,H,W)``.
    """

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int = 8, temporal_kernel: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = FrameConv(cin, cout)
        self.norm_t = _norm(cout, groups)
        self.conv_t = TemporalConv(cout, temporal_kernel)
        nn.init.zeros_(self.conv_t.conv.weight)
        nn.init.zeros_(self.conv_t.conv.bias)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = _norm(cout, groups)
        self.drop = nn.Dropout(dropout)
        self.conv2 = FrameConv(cout, cout)
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)
        self.skip = FrameConv(cin, cout, 1, padding=0) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B,Ci,F,H,W)->(B,Co,F,H,W)
        h = h + self.conv_t(F.silu(self.norm_t(h)))  # temporal mixing, same shape
        scale, shift = self.film(emb).permute(0, 2, 1)[..., None, None].chunk(2, dim=1)  # (B,F,E)->2x(B,Co,F,1,1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class SpaceTimeAttention(nn.Module):
    """Spatial self-attention per frame, temporal self-attention per pixel, cross-attention to the condition.

    ``forward(x (B,C,F,H,W), context (B,T,Dk) | None, context_mask bool (B,T) | None) -> (B,C,F,H,W)``.
    Each branch is residual with a zero-initialised output (the block starts as the identity).
    """

    def __init__(self, channels: int, context_dim: int | None, heads: int = 4,
                 cross_window: int | None = None) -> None:
        super().__init__()
        self.spatial = MultiHeadAttention(channels, None, heads, zero_init=True)
        self.temporal = MultiHeadAttention(channels, None, heads, zero_init=True)
        self.cross = MultiHeadAttention(channels, context_dim, heads, zero_init=True) if context_dim else None
        self.cross_window = cross_window

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, Fr, H, W = x.shape
        h = x.permute(0, 2, 3, 4, 1).reshape(B * Fr, H * W, C)  # (B,C,F,H,W)->(BF,HW,C)
        h = h + self.spatial(h)
        if self.cross is not None and context is not None:
            h = h + self.cross(h, *self._frame_context(context, context_mask, Fr))  # (BF,HW,C)
        h = h.view(B, Fr, H * W, C).transpose(1, 2).reshape(B * H * W, Fr, C)  # (BF,HW,C)->(BHW,F,C)
        pos = sinusoidal_embedding(torch.arange(Fr, device=x.device), C).to(h.dtype)  # (F,C)
        h = h + self.temporal(h + pos[None])
        return h.view(B, H, W, Fr, C).permute(0, 4, 3, 1, 2).contiguous()  # (BHW,F,C)->(B,C,F,H,W)

    def _frame_context(self, ctx: torch.Tensor, mask: torch.Tensor | None,
                       n_frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per frame: the context (BF,T,Dk) and a key mask (BF,T) limited to ``cross_window`` frames around f."""
        B, T, D = ctx.shape
        ctx_f = ctx[:, None].expand(B, n_frames, T, D).reshape(B * n_frames, T, D)  # (B,T,D)->(BF,T,D)
        m = None
        if self.cross_window is not None:
            centre = (torch.arange(n_frames, device=ctx.device) + 0.5) * T / n_frames - 0.5  # (F,) in key frames
            dist = (torch.arange(T, device=ctx.device)[None, :] - centre[:, None]).abs()  # (F,T)
            m = (dist <= self.cross_window + 0.5)[None].expand(B, n_frames, T)  # (F,T)->(B,F,T)
        if mask is not None:
            km = mask.to(torch.bool)[:, None, :].expand(B, n_frames, T)  # (B,T)->(B,F,T)
            m = km if m is None else (m & km)
        return ctx_f, (m.reshape(B * n_frames, T) if m is not None else None)  # (B,F,T)->(BF,T)


class UNet3D(nn.Module):
    """Noise-conditional space-time U-Net: ``forward(x, c_noise, cond=None, cond_mask=None) -> (B,Co,F,H,W)``.

    Args:
        in_channels / out_channels: C of the input (noisy video plus any concatenated
            conditioning video) and of the output.
        channels: width of the first level; level i has ``channels * channel_mults[i]``.
        num_res_blocks: residual blocks per level (the decoder has one more, as in DDPM).
        attn_levels: levels (0 = full resolution) with a :class:`SpaceTimeAttention` after each block.
        cond_dim: Dc of the condition frames, or None for an unconditional network.
        frame_film: add the condition frame f to the FiLM embedding of frame f (when T == F).
        cross_window: cross-attention half-window in condition frames (None = all frames).
        aug_embedding: embed a second noise level ``aug_level`` (B,) (a cascade's condition
            augmentation, Ho et al. 2022 CDM Sec. 4.1) and add it to the noise embedding.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_levels: Sequence[int] = (1, 2), cond_dim: int | None = None, heads: int = 4,
                 frame_film: bool = True, cross_window: int | None = 2, temporal_kernel: int = 3,
                 groups: int = 8, dropout: float = 0.0, aug_embedding: bool = False) -> None:
        super().__init__()
        emb_dim = 4 * channels
        self.channels, self.n_levels = channels, len(channel_mults)
        self.noise_mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.aug_mlp = (nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
                        if aug_embedding else None)
        self.cond_film = (nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
                          if cond_dim and frame_film else None)
        self.cond_ctx = nn.Linear(cond_dim, emb_dim) if cond_dim else None
        ctx_dim = emb_dim if cond_dim else None
        block = dict(emb_dim=emb_dim, groups=groups, temporal_kernel=temporal_kernel, dropout=dropout)

        def attn(c: int) -> SpaceTimeAttention:
            return SpaceTimeAttention(c, ctx_dim, heads, cross_window)

        self.conv_in = FrameConv(in_channels, channels)
        self.down = nn.ModuleList()
        skips, c = [channels], channels
        for lvl, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                co = channels * mult
                self.down.append(nn.ModuleList([ResBlock3D(c, co, **block), attn(co) if lvl in attn_levels else None]))
                c = co
                skips.append(c)
            if lvl < self.n_levels - 1:
                self.down.append(FrameConv(c, c, stride=2))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock3D(c, c, **block), attn(c), ResBlock3D(c, c, **block)])
        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                co = channels * mult
                self.up.append(nn.ModuleList([ResBlock3D(c + skips.pop(), co, **block),
                                              attn(co) if lvl in attn_levels else None]))
                c = co
            if lvl > 0:
                self.up.append(FrameConv(c, c))  # after 2x nearest upsampling
        self.norm_out = _norm(c, groups)
        self.conv_out = FrameConv(c, out_channels)
        nn.init.zeros_(self.conv_out.conv.weight)
        nn.init.zeros_(self.conv_out.conv.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None,
                cond_mask: torch.Tensor | None = None, aug_level: torch.Tensor | None = None) -> torch.Tensor:
        """x float (B,Ci,F,H,W); c_noise (B,) or scalar; cond (B,T,Dc) | None; aug_level (B,) | None -> (B,Co,F,H,W)."""
        B, _, Fr, H, W = x.shape
        step = 2 ** (self.n_levels - 1)
        if H % step or W % step:
            raise ValueError(f"UNet3D needs H and W divisible by {step}, got {H}x{W}")
        c_noise = torch.as_tensor(c_noise, device=x.device, dtype=torch.float32).reshape(-1).expand(B)  # (B,)
        emb = self.noise_mlp(sinusoidal_embedding(c_noise * 1000.0, self.channels))  # (B,)->(B,E)
        if self.aug_mlp is not None:
            if aug_level is None:
                raise ValueError("this UNet3D embeds a condition augmentation level: pass aug_level (B,)")
            lv = torch.as_tensor(aug_level, device=x.device, dtype=torch.float32).reshape(-1).expand(B)  # (B,)
            emb = emb + self.aug_mlp(sinusoidal_embedding(lv * 1000.0, self.channels))  # (B,)->(B,E)
        emb = emb[:, None].expand(B, Fr, emb.shape[-1])  # (B,E)->(B,F,E)
        ctx = None
        if cond is not None and self.cond_ctx is not None:
            if self.cond_film is not None and cond.shape[1] == Fr:
                emb = emb + self.cond_film(cond)  # (B,F,Dc)->(B,F,E)
            pos = sinusoidal_embedding(torch.arange(cond.shape[1], device=x.device), emb.shape[-1])  # (T,E)
            ctx = self.cond_ctx(cond) + pos[None]  # (B,T,Dc)->(B,T,E)
        h = self.conv_in(x)  # (B,Ci,F,H,W)->(B,C,F,H,W)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, FrameConv):
                h = layer(h)  # (B,C,F,H,W)->(B,C,F,H/2,W/2)
            else:
                h = self._block(layer, h, emb, ctx, cond_mask)
            hs.append(h)
        h = self.mid[0](h, emb)
        h = self.mid[1](h, ctx, cond_mask)
        h = self.mid[2](h, emb)
        for layer in self.up:
            if isinstance(layer, FrameConv):
                h = layer(F.interpolate(h, scale_factor=(1, 2, 2), mode="nearest"))  # (B,C,F,H,W)->(B,C,F,2H,2W)
            else:
                h = self._block(layer, torch.cat([h, hs.pop()], dim=1), emb, ctx, cond_mask)  # (B,C+Cs,F,H,W)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B,C,F,H,W)->(B,Co,F,H,W)

    @staticmethod
    def _block(layer: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor, ctx: torch.Tensor | None,
               mask: torch.Tensor | None) -> torch.Tensor:
        res, att = layer[0], layer[1]
        h = res(h, emb)
        return att(h, ctx, mask) if att is not None else h
