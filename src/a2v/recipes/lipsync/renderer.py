"""Lip-sync stage 2: pix2pixHD renderer, facial map -> video frame of one person.

Zheng et al. 2020 (arXiv:2002.08700) §3.2 render the face from a facial map (landmark
lines + Canny edges) with pix2pixHD (Wang et al. 2018), trained on the template video of one
person. The networks and losses live in :mod:`a2v.gan`; this module wires them:

- G: :class:`~a2v.gan.pix2pixhd.GlobalGenerator`, or a LocalEnhancer around it at 512 px.
- D: :class:`~a2v.gan.discriminators.MultiscaleDiscriminator` (``num_D`` scales), conditional:
  it judges concat(map, image) (pix2pixHD eq. 1).
- G loss = GAN + lambda_feat * feature matching (eq. 4) + lambda_vgg * VGG19 perceptual;
  D loss = 0.5 * (GAN(real) + GAN(fake)), LSGAN or hinge.

Images and maps: uint8 (B,C,H,W) in [0,255] or float (B,C,H,W) in [-1,1]; H = W = resolution_px.
Per batch: :meth:`Renderer.discriminator_step`, optimizer step of D, then
:meth:`Renderer.generator_step`, optimizer step of G (:class:`RendererTask` does this on
:func:`a2v.train.fit`). Checkpoints: ``config.json`` + ``generator.safetensors`` (+
``discriminator.safetensors``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from a2v.config import from_dict, to_dict
from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.gan.discriminators import MultiscaleDiscriminator
from a2v.gan.losses import feature_matching_loss, gan_loss, generator_gan_loss
from a2v.gan.pix2pixhd import build_generator, size_multiple
from a2v.io import atomic_path, write_json_atomic
from a2v.train.task import StepContext, Task, frozen_parameters

CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"


@dataclass(frozen=True)
class RendererConfig:
    """pix2pixHD renderer settings (defaults: the paper's, ``--netG global`` at <= 256 px).

    resolution_px: square frame side (128, 256, 512 in the paper; any multiple of
    ``2 ** (n_downsample_global + n_local_enhancers)`` works).
    input_channels: channels of the facial map. ngf: first-layer channels of the finest
    generator level (the global generator gets ``ngf * 2**n_local_enhancers``, as pix2pixHD).
    n_local_enhancers: None = 1 at resolution_px >= 512, else 0.
    lambda_vgg: weight of the VGG19 loss; 0 disables it (no VGG weights needed).
    lambda_l1: weight of an L1 term |G(map) - frame| (ours, 0 in pix2pixHD): without VGG weights it
    makes a small renderer converge in the few thousand steps a CPU affords.
    vgg_weights_path: torchvision ``vgg19-dcbb9e9d.pth``; None = the torch hub checkpoint folder.
    lr, betas: Adam for both G and D (pix2pixHD: 2e-4, (0.5, 0.999)).
    """

    resolution_px: int = 256
    input_channels: int = 3
    output_channels: int = 3
    ngf: int = 64
    ndf: int = 64
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int | None = None
    n_blocks_local: int = 3
    num_D: int = 3
    n_layers_D: int = 3
    gan_loss: Literal["lsgan", "hinge"] = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_l1: float = 0.0
    vgg_weights_path: str | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        for name in ("input_channels", "output_channels", "ngf", "ndf", "num_D", "n_layers_D"):
            if getattr(self, name) < 1:
                raise ConfigError(f"renderer: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_downsample_global", "n_blocks_global", "n_blocks_local"):
            if getattr(self, name) < 0:
                raise ConfigError(f"renderer: {name} must be >= 0, got {getattr(self, name)}")
        if self.n_local_enhancers is not None and self.n_local_enhancers < 0:
            raise ConfigError(f"renderer: n_local_enhancers must be >= 0 or null, got {self.n_local_enhancers}")
        if self.gan_loss not in ("lsgan", "hinge"):
            raise ConfigError(f"renderer: gan_loss must be 'lsgan' or 'hinge', got {self.gan_loss!r}")
        if self.lambda_feat < 0 or self.lambda_vgg < 0 or self.lambda_l1 < 0:
            raise ConfigError("renderer: lambda_feat, lambda_vgg and lambda_l1 must be >= 0")
        mult = self.size_multiple
        if self.resolution_px < mult or self.resolution_px % mult:
            raise ConfigError(
                f"renderer: resolution_px {self.resolution_px} must be a multiple of {mult} "
                f"(2**(n_downsample_global + n_local_enhancers)); lower n_downsample_global or change the size"
            )

    @property
    def local_enhancers(self) -> int:
        """Resolved number of local-enhancer levels."""
        if self.n_local_enhancers is not None:
            return self.n_local_enhancers
        return 1 if self.resolution_px >= 512 else 0

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.n_downsample_global, self.local_enhancers)


def to_model_range(x: torch.Tensor, what: str) -> torch.Tensor:
    """uint8 [0,255] -> float32 [-1,1]; float tensors must already be in [-1,1] and pass unchanged."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} must be a torch tensor (B,C,H,W), got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.float() / 127.5 - 1.0
    if not x.is_floating_point():
        raise InputError(f"{what} must be uint8 in [0,255] or float in [-1,1], got dtype {x.dtype}")
    lo, hi = torch.aminmax(x.detach())
    if lo < -1.001 or hi > 1.001:
        raise InputError(
            f"{what}: float values must lie in [-1,1], got [{float(lo):.3g}, {float(hi):.3g}] (pass uint8 or rescale)"
        )
    return x


class Renderer:
    """pix2pixHD generator + conditional multi-scale discriminator + losses for one person.

    device: where the networks live ("cpu", "cuda", torch.device). for_training: False builds
    the generator only (no D, no VGG weights needed). vgg_loss: a ready perceptual-loss module
    ``(fake, real) -> scalar``; default :class:`~a2v.gan.perceptual.VGGPerceptualLoss` from
    ``cfg.vgg_weights_path`` when ``cfg.lambda_vgg > 0`` (MissingWeightsError when absent).
    """

    def __init__(
        self,
        cfg: RendererConfig,
        device: str | torch.device = "cpu",
        for_training: bool = True,
        vgg_loss: nn.Module | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.generator = build_generator(
            cfg.input_channels, cfg.output_channels, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global,
            cfg.local_enhancers, cfg.n_blocks_local,
        ).to(self.device)
        self.discriminator: MultiscaleDiscriminator | None = None
        self.vgg_loss: nn.Module | None = None
        if for_training:
            self.discriminator = MultiscaleDiscriminator(
                cfg.input_channels + cfg.output_channels, cfg.ndf, cfg.n_layers_D, cfg.num_D
            ).to(self.device)
            if cfg.lambda_vgg > 0:
                if vgg_loss is None:
                    from a2v.gan.perceptual import VGGPerceptualLoss

                    vgg_loss = VGGPerceptualLoss(cfg.vgg_weights_path)
                self.vgg_loss = vgg_loss.to(self.device)

    def to(self, device: str | torch.device) -> Renderer:
        """Move G, D and the VGG loss to ``device`` (the training loop may place G and D elsewhere)."""
        self.device = torch.device(device)
        for net in (self.generator, self.discriminator, self.vgg_loss):
            if net is not None:
                net.to(self.device)
        return self

    # ---- data -------------------------------------------------------------------------
    def _check(self, x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
        r = self.cfg.resolution_px
        if x.ndim != 4 or x.shape[1] != channels or x.shape[2] != r or x.shape[3] != r:
            raise InputError(f"{what} must have shape (B,{channels},{r},{r}), got {tuple(x.shape)}")
        return to_model_range(x, what).to(self.device, torch.float32)

    def _pair(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """batch {"map": (B,Cin,H,W), "frame": (B,3,H,W)} -> both float32 in [-1,1] on the device."""
        missing = [k for k in ("map", "frame") if k not in batch]
        if missing:
            raise InputError(f"renderer batch needs keys 'map' and 'frame'; missing {missing}")
        maps = self._check(batch["map"], self.cfg.input_channels, "facial map")
        frames = self._check(batch["frame"], self.cfg.output_channels, "frame")
        if maps.shape[0] != frames.shape[0]:
            raise InputError(f"batch has {maps.shape[0]} maps but {frames.shape[0]} frames")
        return maps, frames

    def _need_d(self, discriminator: nn.Module | None) -> nn.Module:
        d = discriminator if discriminator is not None else self.discriminator
        if d is None:
            raise InputError("this renderer was built for inference (for_training=False); it has no discriminator")
        return d

    # ---- training steps ----------------------------------------------------------------
    def discriminator_step(
        self,
        batch: Mapping[str, torch.Tensor],
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D loss of one batch (pix2pixHD: 0.5 * (GAN(D(map, frame), real) + GAN(D(map, G(map)), fake))).

        batch: {"map": (B,Cin,H,W), "frame": (B,3,H,W)}, uint8 or float [-1,1]. generator,
        discriminator: the modules to call (e.g. the loop's wrapped ones); default the renderer's.
        G runs without gradients. Returns (loss scalar with grad into D, detached logs).
        """
        g = generator if generator is not None else self.generator
        d = self._need_d(discriminator)
        maps, real = self._pair(batch)
        with torch.no_grad():
            fake = g(maps)  # (B,Cin,H,W)->(B,3,H,W)
        pairs = torch.cat([torch.cat([maps, real], 1), torch.cat([maps, fake], 1)], 0)  # (2B,Cin+3,H,W)
        scores = [feats[-1].chunk(2, 0) for feats in d(pairs)]  # per scale: ((B,1,h,w) real, (B,1,h,w) fake)
        pred_real = [s[0] for s in scores]
        pred_fake = [s[1] for s in scores]
        loss_real = gan_loss(pred_real, True, self.cfg.gan_loss)
        loss_fake = gan_loss(pred_fake, False, self.cfg.gan_loss)
        loss = 0.5 * (loss_real + loss_fake)
        logs = {"d_loss": loss.detach(), "d_real": loss_real.detach(), "d_fake": loss_fake.detach()}
        return loss, logs

    def generator_step(
        self,
        batch: Mapping[str, torch.Tensor],
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G loss of one batch: GAN(D(map, G(map)), real) + feature matching + lambda_vgg * VGG (+ lambda_l1 * L1).

        D's parameters are frozen while the graph is built, so backward of the returned loss
        fills only G's gradients. Logs hold each term and the L1 distance |G(map) - frame|
        (a monitor, not a loss term), detached.
        """
        cfg = self.cfg
        g = generator if generator is not None else self.generator
        d = self._need_d(discriminator)
        maps, real = self._pair(batch)
        fake = g(maps)  # (B,Cin,H,W)->(B,3,H,W)
        with frozen_parameters(d):
            feats_fake = d(torch.cat([maps, fake], 1))  # num_D lists of features of (B,Cin+3,H,W)
            with torch.no_grad():
                feats_real = d(torch.cat([maps, real], 1))
        loss_gan = generator_gan_loss(feats_fake, cfg.gan_loss)
        loss_feat = feature_matching_loss(feats_fake, feats_real, cfg.n_layers_D, cfg.lambda_feat)
        loss = loss_gan + loss_feat
        logs = {"g_gan": loss_gan.detach(), "g_feat": loss_feat.detach()}
        if self.vgg_loss is not None:
            loss_vgg = cfg.lambda_vgg * self.vgg_loss(fake, real)
            loss = loss + loss_vgg
            logs["g_vgg"] = loss_vgg.detach()
        if cfg.lambda_l1 > 0:
            loss_l1 = cfg.lambda_l1 * F.l1_loss(fake, real)
            loss = loss + loss_l1
            logs["g_l1"] = loss_l1.detach()
        logs["g_loss"] = loss.detach()
        logs["l1"] = F.l1_loss(fake.detach(), real)
        return loss, logs

    def make_optimizers(self) -> tuple[torch.optim.Adam, torch.optim.Adam]:
        """(G optimizer, D optimizer): Adam(lr, betas) each, as pix2pixHD."""
        d = self._need_d(None)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
        return opt_g, opt_d

    # ---- inference ---------------------------------------------------------------------
    @torch.no_grad()
    def render(self, maps: torch.Tensor, batch_size: int = 16, progress: bool = False) -> torch.Tensor:
        """Facial maps uint8 [0,255] or float [-1,1] (B,Cin,H,W) -> frames float32 (B,3,H,W) in [-1,1], CPU."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(maps, torch.Tensor) or maps.ndim != 4 or maps.shape[0] == 0:
            raise InputError(f"render needs a non-empty (B,C,H,W) tensor of facial maps, got {getattr(maps, 'shape', maps)}")
        chunks = range(0, maps.shape[0], batch_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="render", unit="batch")
        out = []
        for i in chunks:
            part = self._check(maps[i : i + batch_size], self.cfg.input_channels, "facial map")
            out.append(self.generator(part).float().cpu())  # (b,Cin,H,W)->(b,3,H,W)
        return torch.cat(out)  # (B,3,H,W)

    # ---- checkpoints -------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        """Write config.json, generator.safetensors and (when built) discriminator.safetensors atomically."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        nets: dict[str, nn.Module | None] = {GENERATOR_FILE: self.generator, DISCRIMINATOR_FILE: self.discriminator}
        for name, net in nets.items():
            if net is None:
                continue
            state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
            with atomic_path(out / name) as tmp:
                save_file(state, str(tmp))
        write_json_atomic(out / CONFIG_FILE, to_dict(self.cfg))
        return out

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | os.PathLike,
        device: str | torch.device = "cpu",
        for_training: bool = False,
        vgg_loss: nn.Module | None = None,
    ) -> Renderer:
        """Load a renderer written by :meth:`save_pretrained` (with D too when ``for_training``)."""
        from safetensors.torch import load_file

        root = Path(model_dir)
        cfg_path = root / CONFIG_FILE
        if not cfg_path.is_file():
            raise MissingWeightsError(f"renderer checkpoint has no {CONFIG_FILE} in {root} (is this a renderer folder?)")
        try:
            data: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{cfg_path} is not valid JSON ({e.msg} at line {e.lineno})") from None
        cfg = from_dict(RendererConfig, data, str(cfg_path))
        r = cls(cfg, device=device, for_training=for_training, vgg_loss=vgg_loss)
        nets: dict[str, nn.Module | None] = {GENERATOR_FILE: r.generator, DISCRIMINATOR_FILE: r.discriminator}
        for name, net in nets.items():
            if net is None:
                continue
            path = root / name
            if not path.is_file():
                raise MissingWeightsError(f"renderer weights {path} not found (train the renderer or fix the path)")
            try:
                net.load_state_dict(load_file(str(path), device=str(r.device)), strict=True)
            except RuntimeError as e:
                first = str(e).splitlines()[0]
                raise InputError(f"{path} does not match {cfg_path} ({first})") from None
        return r


class RendererTask(Task):
    """The renderer as an :func:`a2v.train.fit` task: per batch a D update, then a G update.

    Batches are {"map": (B,Cin,H,W), "frame": (B,3,H,W)} (uint8 or float [-1,1]). Module names
    "generator" and "discriminator"; Adam with the renderer config's lr and betas.
    """

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._discriminator = renderer._need_d(None)

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.renderer.generator, "discriminator": self._discriminator}

    def optimizers(self, modules: dict[str, nn.Module], cfg: Any) -> dict[str, torch.optim.Optimizer]:
        c = self.renderer.cfg
        return {n: torch.optim.Adam(m.parameters(), lr=c.lr, betas=c.betas) for n, m in modules.items()}

    def step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        if self.renderer.device != ctx.device:
            self.renderer.to(ctx.device)  # inputs and the VGG loss follow where the loop put G and D
        g, d = ctx.modules["generator"], ctx.modules["discriminator"]
        d_loss, d_logs = self.renderer.discriminator_step(batch, g, d)
        ctx.backward(d_loss)
        ctx.optimizer_step("discriminator")
        # unwrapped D inside the G step: D's parameters are frozen there (see StepContext.frozen)
        g_loss, g_logs = self.renderer.generator_step(batch, g, ctx.unwrap("discriminator"))
        ctx.backward(g_loss)
        ctx.optimizer_step("generator")
        return {**d_logs, **g_logs}
