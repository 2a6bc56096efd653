"""Inputs shared by the image recipe tests (a module of its own: `conftest` names collide across folders)."""

from __future__ import annotations

import re
import sys
import types

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


def lightning_ckpt(path, state_dict, monkeypatch) -> None:
    """Save ``state_dict`` as PyTorch Lightning does: callbacks keyed by the callback class, optimizer and
    scheduler states, and hyper-parameters holding non-tensor objects (an OmegaConf-like config and
    Lightning's AttributeDict). The classes live in stand-in modules that are gone again when the file is read,
    as on a machine without Lightning/OmegaConf."""
    mods = {}
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint",
                 "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing", "omegaconf",
                 "omegaconf.dictconfig"):
        mods[name] = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, mods[name])
    ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": "pytorch_lightning.callbacks.model_checkpoint"})
    AttributeDict = type("AttributeDict", (dict,), {"__module__": "pytorch_lightning.utilities.parsing"})
    DictConfig = type("DictConfig", (), {"__module__": "omegaconf.dictconfig"})
    mods["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint = ModelCheckpoint
    mods["pytorch_lightning.utilities.parsing"].AttributeDict = AttributeDict
    mods["omegaconf.dictconfig"].DictConfig = DictConfig
    ddconfig = DictConfig()
    ddconfig.__dict__.update({"_content": {"z_channels": 8, "ch_mult": [1, 2]}})
    first = next(iter(state_dict.values()))
    ckpt = {
        "epoch": 4, "global_step": 1234, "pytorch-lightning_version": "1.0.8",
        "callbacks": {ModelCheckpoint: {"monitor": "val/rec_loss", "best_model_score": torch.tensor(0.25),
                                        "best_model_path": "/logs/last.ckpt"}},
        "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros_like(first)}},
                              "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "params": [0]}]}],
        "lr_schedulers": [],
        "state_dict": state_dict,
        "hyper_parameters": AttributeDict(ddconfig=ddconfig, n_embed=32),
    }
    torch.save(ckpt, path)
    for name in mods:
        monkeypatch.delitem(sys.modules, name)
