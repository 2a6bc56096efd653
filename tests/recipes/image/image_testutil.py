"""Inputs shared by the image recipe tests (a module of its own: `conftest` names collide across folders)."""

from __future__ import annotations

import re

import numpy as np
import torch


def tone(freq_hz: float, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """float32 (S,) 16 kHz: a sine at ``freq_hz`` plus a little noise, amplitude about 0.5."""
    t = np.arange(round(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(2 * np.pi * freq_hz * t) + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


TAMING_YAML = ("model:\n  params:\n    embed_dim: 8\n    n_embed: 32\n    ddconfig:\n      double_z: false\n"
               "      z_channels: 8\n      resolution: 32\n      in_channels: 3\n      out_ch: 3\n      ch: 32\n"
               "      ch_mult: [1, 2]\n      num_res_blocks: 1\n      attn_resolutions: [16]\n      dropout: 0.0\n")


def tiny_taming_reference():
    """A random diffusers VQModel with the shape TAMING_YAML describes (attention at 16 px), eval mode."""
    from diffusers import VQModel

    torch.manual_seed(0)
    return VQModel(down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
                   up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(32, 64),
                   layers_per_block=1, latent_channels=8, num_vq_embeddings=32, vq_embed_dim=8, sample_size=32).eval()


def _to_taming(sd: dict[str, torch.Tensor], n_levels: int) -> dict[str, torch.Tensor]:
    """Inverse of the conversion, written independently: diffusers VQModel names -> taming-transformers names."""
    out = {}
    for k, v in sd.items():
        t = k.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        t = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)", r"encoder.down.\1.block.\2", t)
        t = re.sub(r"encoder\.down_blocks\.(\d+)\.attentions\.(\d+)", r"encoder.down.\1.attn.\2", t)
        t = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample", t)
        t = re.sub(r"decoder\.up_blocks\.(\d+)\.(resnets|attentions|upsamplers)",
                   lambda m: f"decoder.up_blocks.{n_levels - 1 - int(m[1])}.{m[2]}", t)
        t = re.sub(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)", r"decoder.up.\1.block.\2", t)
        t = re.sub(r"decoder\.up_blocks\.(\d+)\.attentions\.(\d+)", r"decoder.up.\1.attn.\2", t)
        t = re.sub(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0", r"decoder.up.\1.upsample", t)
        t = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", t)
        t = t.replace("mid_block.attentions.0", "mid.attn_1")
        if ".attn" in t:
            t = (t.replace("group_norm", "norm").replace("to_q", "q").replace("to_k", "k").replace("to_v", "v")
                 .replace("to_out.0", "proj_out"))
            if v.ndim == 2:
                v = v[:, :, None, None]  # taming attention uses 1x1 convolutions
        out[t] = v
    return out
