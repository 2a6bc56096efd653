"""VQGAN latent optimisation toward an embedding (VQGAN+CLIP, Crowson et al. 2022, sec. 3).

A diffusers ``VQModel`` decodes a latent grid z (B,C,h,w); z is quantised to the nearest
codebook vector with a straight-through gradient (van den Oord et al. 2017, eq. 3), the picture
is cut into random crops (augmented: flips, noise), the frozen image tower embeds them and Adam
moves z to minimise the squared spherical distance to the target embedding. Taming-transformers
VQGAN checkpoints (Esser et al. 2021) are converted to the diffusers layout at load time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.recipes.image.config import GenerateConfig, VQConfig


def tiny_vq(seed: int = 0) -> nn.Module:
    """A small random VQModel (factor 4, 64 codes of 8 dims) for tests and CPU-sized configs."""
    from diffusers import VQModel

    torch.manual_seed(seed)
    return VQModel(block_out_channels=(16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 3,
                   up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, latent_channels=8,
                   num_vq_embeddings=64, vq_embed_dim=8, norm_num_groups=8, sample_size=32)


def _taming_diffusers_config(yaml_path: Path) -> tuple[dict, int]:
    """diffusers VQModel config from a taming-transformers model yaml; also the codebook size."""
    from a2v.config import read_yaml

    p = read_yaml(yaml_path).get("model", {}).get("params", {})
    dd = p.get("ddconfig")
    if not dd:
        raise InputError(f"{yaml_path} is not a taming-transformers VQGAN config (no model.params.ddconfig)")
    res, mult, attn = int(dd["resolution"]), list(dd["ch_mult"]), set(dd.get("attn_resolutions", []))
    levels = [res // 2**i for i in range(len(mult))]  # taming level i works at resolution / 2**i
    down = tuple("AttnDownEncoderBlock2D" if r in attn else "DownEncoderBlock2D" for r in levels)
    up = tuple("AttnUpDecoderBlock2D" if r in attn else "UpDecoderBlock2D" for r in reversed(levels))
    cfg = dict(in_channels=int(dd["in_channels"]), out_channels=int(dd["out_ch"]), down_block_types=down,
               up_block_types=up, block_out_channels=tuple(int(dd["ch"]) * m for m in mult),
               layers_per_block=int(dd["num_res_blocks"]), latent_channels=int(dd["z_channels"]),
               num_vq_embeddings=int(p["n_embed"]), vq_embed_dim=int(p["embed_dim"]), norm_num_groups=32,
               sample_size=res)
    return cfg, int(p["n_embed"])


def convert_taming_state_dict(sd: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """Taming-transformers VQGAN weights -> diffusers VQModel names (attention 1x1 convs -> linears).

    diffusers' LDM VAE converter maps the resnets, samplers, mid blocks and quant convs; the
    attention blocks inside VQGAN's down/up levels and the codebook are mapped here.
    """
    from diffusers.loaders.single_file_utils import (
        convert_ldm_vae_checkpoint,
        update_vae_attentions_ldm_to_diffusers,
    )

    sd = {k: v for k, v in sd.items() if not k.startswith("loss.")}  # the discriminator/LPIPS of training
    out = convert_ldm_vae_checkpoint(sd, config)
    out = {k: v for k, v in out.items() if ".attn." not in k}  # level attentions mis-mapped as resnets
    n = len(config["up_block_types"])
    for key in sd:
        if m := re.match(r"^encoder\.down\.(\d+)\.attn\.(\d+)\.", key):
            update_vae_attentions_ldm_to_diffusers([key], out, sd, {"old": f"down.{m[1]}.attn.{m[2]}",
                                                                     "new": f"down_blocks.{m[1]}.attentions.{m[2]}"})
        elif m := re.match(r"^decoder\.up\.(\d+)\.attn\.(\d+)\.", key):
            i = n - 1 - int(m[1])  # diffusers up_blocks run from the lowest resolution
            update_vae_attentions_ldm_to_diffusers([key], out, sd, {"old": f"up.{m[1]}.attn.{m[2]}",
                                                                     "new": f"up_blocks.{i}.attentions.{m[2]}"})
    for k in ("quant_conv.weight", "quant_conv.bias", "post_quant_conv.weight", "post_quant_conv.bias"):
        if k in sd:
            out[k] = sd[k]
    out["quantize.embedding.weight"] = sd["quantize.embedding.weight"]
    return out


def load_taming_vqgan(ckpt: str | Path, yaml_path: str | Path) -> nn.Module:
    """A taming-transformers VQGAN (``.safetensors`` of its state dict, or a ``.ckpt`` that ``torch.load``
    reads with ``weights_only=True``) + its yaml, as a VQModel. A published Lightning ``.ckpt`` holding other
    objects raises an InputError naming the one-time conversion (``a2v image convert-vqgan``)."""
    from diffusers import VQModel

    from a2v.weight_files import locate_weight_file, resolve_weight_file

    # a path, or a bare name looked up in the working folder, then the torch hub folder (the rule of `a2v info`);
    # for x.ckpt the x.safetensors that `a2v image convert-vqgan x.ckpt` writes beside it is read first
    converted = locate_weight_file(Path(ckpt).with_suffix(".safetensors")) if Path(ckpt).suffix == ".ckpt" else None
    ckpt = converted or resolve_weight_file(
        ckpt, what="VQGAN checkpoint (e.g. taming-transformers' vqgan_imagenet_f16_16384.ckpt)", key="generate.vq.ckpt")
    yaml_path = resolve_weight_file(yaml_path, what="VQGAN config (e.g. vqgan_imagenet_f16_16384.yaml)",
                                    key="generate.vq.yaml")
    config, _ = _taming_diffusers_config(yaml_path)
    from a2v.recipes.image.ckpt import read_state_dict

    sd = read_state_dict(ckpt, "VQGAN checkpoint", "a2v image convert-vqgan")
    model = VQModel(**config)
    missing, unexpected = model.load_state_dict(convert_taming_state_dict(sd, config), strict=False)
    if missing or unexpected:
        raise InputError(f"{ckpt}: weights do not fit {yaml_path.name} ({len(missing)} missing, e.g. "
                         f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    return model


def build_vq(cfg: VQConfig, device: str | torch.device = "cpu") -> nn.Module:
    """The frozen VQ decoder named by ``cfg`` on ``device`` (MissingWeightsError names a missing file)."""
    if cfg.kind == "tiny":
        vq = tiny_vq(cfg.tiny_seed)
    elif cfg.kind == "diffusers":
        from diffusers import VQModel

        p = Path(cfg.path).expanduser()
        if not cfg.path or not (p / "config.json").is_file():
            raise MissingWeightsError(f"VQModel folder not found: {p / 'config.json'} (set --set generate.vq.path="
                                      "<folder written by VQModel.save_pretrained>)")
        try:
            vq = VQModel.from_pretrained(str(p), local_files_only=True)
        except OSError as e:
            raise MissingWeightsError(f"VQModel folder {p} has no weight file (diffusion_pytorch_model.safetensors)"
                                      ) from e
    elif cfg.kind == "taming":
        vq = load_taming_vqgan(cfg.ckpt, cfg.yaml)
    else:
        raise ConfigError(f"unknown generate.vq.kind '{cfg.kind}' (taming, diffusers, tiny)")
    return vq.to(device).eval().requires_grad_(False)


def latent_hw(vq: nn.Module, size_px: tuple[int, int]) -> tuple[int, int]:
    """Latent grid (h, w) for a picture of (H, W) pixels: H / 2**(levels-1)."""
    f = 2 ** (len(vq.config.block_out_channels) - 1)
    if size_px[0] % f or size_px[1] % f:
        raise ConfigError(f"generate.size_px {size_px} must be multiples of the VQ downsampling factor {f}")
    return size_px[0] // f, size_px[1] // f


def decode(vq: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """z (B,C,h,w) -> picture float32 (B,3,H,W) in [0,1] (quantised, straight-through; clamp with gradient)."""
    x = vq.decode(z).sample  # (B,C,h,w)->(B,3,H,W) in about [-1,1]
    x = (x + 1) / 2  # (B,3,H,W) [0,1]
    return x + (x.clamp(0, 1) - x).detach()  # VQGAN+CLIP's ClampWithGrad: values clamped, gradient kept


def cutouts(images: torch.Tensor, n: int, size: int, cut_pow: float, noise_std: float, flip: bool,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Random square crops resized to ``size``: (1,3,H,W) -> (n,3,size,size) (VQGAN+CLIP MakeCutouts).

    Crop side ~ U(0,1)**cut_pow between min(H,W,size) and min(H,W); random horizontal flips and
    Gaussian noise of std ``noise_std`` scaled per cutout by U(0,1).
    """
    _, _, H, W = images.shape
    max_s, min_s = min(H, W), min(H, W, size)
    dev = images.device
    r = torch.rand(n, 3, generator=generator).tolist()
    out = []
    for u, a, b in r:
        s = int(u**cut_pow * (max_s - min_s) + min_s)
        y, x = int(a * (H - s + 1)), int(b * (W - s + 1))
        crop = images[:, :, y:y + s, x:x + s]  # (1,3,H,W)->(1,3,s,s)
        out.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True))
    cuts = torch.cat(out)  # n x (1,3,size,size) -> (n,3,size,size)
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(dev)  # (n,)
        cuts = torch.where(mask[:, None, None, None], cuts.flip(-1), cuts)  # (n,3,size,size)
    if noise_std > 0:
        scale = (torch.rand(n, generator=generator) * noise_std).to(dev)  # (n,)
        cuts = cuts + scale[:, None, None, None] * torch.randn(cuts.shape, generator=generator).to(dev)
    return cuts


def spherical_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance of L2-normalised rows: 2 arcsin(|x-y|/2)^2 (VQGAN+CLIP's loss), (N,)."""
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def optimise_latents(vq: nn.Module, tower: nn.Module, target: torch.Tensor, cfg: GenerateConfig,
                     init_image: torch.Tensor | None = None, steps: int | None = None, progress: bool = True,
                     on_frame: Callable[[int, np.ndarray], None] | None = None) -> tuple[np.ndarray, list[float]]:
    """Optimise a VQ latent so the tower embeds its picture near ``target``.

    target: (E,) embedding (normalised here). init_image: float32 (3,H,W) in [0,1] (resized to
    ``cfg.size_px``) or None (random codebook entries, seeded by ``cfg.seed``). ``on_frame(step,
    uint8 (H,W,3))`` is called every ``cfg.video_every`` steps. Returns (picture uint8 (H,W,3)
    RGB, loss per step). Adam, lr ``cfg.lr``, ``steps or cfg.steps`` steps.
    """
    from tqdm.auto import tqdm

    dev = next(vq.parameters()).device
    g = torch.Generator().manual_seed(cfg.seed)
    H, W = cfg.size_px
    h, w = latent_hw(vq, (H, W))
    codebook = vq.quantize.embedding.weight  # (K,C)
    if init_image is not None:
        img = F.interpolate(init_image[None].float(), size=(H, W), mode="bicubic", align_corners=False)  # (1,3,H,W)
        with torch.no_grad():
            z0 = vq.encode(img.to(dev).clamp(0, 1) * 2 - 1).latents  # (1,3,H,W)->(1,C,h,w)
    else:
        idx = torch.randint(codebook.shape[0], (h * w,), generator=g).to(dev)  # (h*w,)
        z0 = codebook[idx].T.reshape(1, -1, h, w)  # (h*w,C)->(1,C,h,w)
    z = z0.detach().clone().requires_grad_(True)
    z_min, z_max = codebook.min(0).values[None, :, None, None], codebook.max(0).values[None, :, None, None]
    opt = torch.optim.Adam([z], lr=cfg.lr)
    tgt = target.detach().to(dev, torch.float32).reshape(1, -1)  # (1,E)
    losses: list[float] = []
    n_steps = int(steps or cfg.steps)
    for i in tqdm(range(n_steps), desc="VQGAN", unit="step", disable=not progress, leave=False):
        pic = decode(vq, z)  # (1,3,H,W)
        cuts = cutouts(pic, cfg.num_cutouts, tower.image_size_px, cfg.cut_pow, cfg.noise_std, cfg.flip, g)
        emb = tower.encode_image(cuts)  # (n,3,s,s)->(n,E)
        loss = spherical_distance(emb, tgt).mean()
        if cfg.init_weight > 0 and init_image is not None:
            loss = loss + cfg.init_weight * F.mse_loss(z, z0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.copy_(torch.maximum(torch.minimum(z, z_max), z_min))  # stay inside the codebook's range
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"VQGAN optimisation diverged at step {i} (loss {losses[-1]})")
        if on_frame is not None and i % max(1, cfg.video_every) == 0:
            on_frame(i, to_uint8(pic.detach()))
    with torch.no_grad():
        final = to_uint8(decode(vq, z))  # (H,W,3)
    if on_frame is not None:
        on_frame(n_steps, final)
    return final, losses


def to_uint8(pic: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) float in [0,1] -> uint8 (H,W,3) RGB."""
    return (pic[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()  # (3,H,W)->(H,W,3)
