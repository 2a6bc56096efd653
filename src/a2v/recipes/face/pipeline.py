"""Speech -> face photo: ``FacePipeline.from_pretrained(dir).generate(audio=...)``.

Folder layout (``save_pretrained``): ``config.json`` (the resolved :class:`FaceConfig`),
``voice_encoder.safetensors``, ``decoder.safetensors`` and optionally ``superres.safetensors``
(without it, faces come out at 64 px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from a2v.config import from_dict, save_json
from a2v.device import resolve_device
from a2v.diffusion.ddpm import ddpm_sample, make_scheduler
from a2v.errors import InputError, MissingWeightsError
from a2v.recipes.face.config import FaceConfig
from a2v.recipes.face.data import load_speech, speech_input, to_uint8
from a2v.recipes.face.decoder import FaceDecoder
from a2v.recipes.face.superres import SuperResUNet, upsample
from a2v.recipes.face.train import augment_low_res
from a2v.recipes.face.voice_encoder import VoiceEncoder, n_freq_bins


def default_device() -> torch.device:
    return torch.device(resolve_device("auto"))


class FacePipeline:
    """Voice encoder + 64 px guided DDPM decoder + optional diffusion super-resolution."""

    def __init__(self, cfg: FaceConfig, voice_encoder: VoiceEncoder, decoder: FaceDecoder,
                 superres: SuperResUNet | None = None, device: str | torch.device | None = None) -> None:
        self.cfg = cfg
        self.device = torch.device(device) if device is not None else default_device()
        self.voice_encoder = voice_encoder.to(self.device).eval()
        self.decoder = decoder.to(self.device).eval()
        self.superres = superres.to(self.device).eval() if superres is not None else None

    @classmethod
    def from_config(cls, cfg: FaceConfig, device: str | torch.device | None = None, with_superres: bool = True) -> FacePipeline:
        """Randomly initialised models of ``cfg`` (for training from scratch and tests)."""
        return cls(cfg, VoiceEncoder(cfg.voice, cfg.embedding.dim, n_freq_bins(cfg.audio.n_fft)),
                   FaceDecoder(cfg.decoder, cfg.embedding.dim),
                   SuperResUNet(cfg.superres, cfg.embedding.dim) if with_superres else None,
                   device)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> FacePipeline:
        """Load a folder written by :meth:`save_pretrained` or :func:`a2v.recipes.face.train.export_stage`."""
        import json

        from safetensors.torch import load_model

        d = Path(path)
        cfg_file = d / "config.json"
        if not cfg_file.is_file():
            raise MissingWeightsError(f"face model config not found: {cfg_file}")
        for name in ("voice_encoder", "decoder"):
            if not (d / f"{name}.safetensors").is_file():
                raise MissingWeightsError(f"face model weights not found: {d / f'{name}.safetensors'} "
                                          f"(train it: a2v face train --stage {'encoder' if name == 'voice_encoder' else name})")
        cfg = from_dict(FaceConfig, json.loads(cfg_file.read_text(encoding="utf-8")), str(cfg_file))
        has_sr = (d / "superres.safetensors").is_file()
        pipe = cls.from_config(cfg, "cpu", with_superres=has_sr)
        modules = {"voice_encoder": pipe.voice_encoder, "decoder": pipe.decoder}
        if has_sr:
            modules["superres"] = pipe.superres
        for name, m in modules.items():
            load_model(m, str(d / f"{name}.safetensors"), strict=True)
        dev = torch.device(device) if device is not None else default_device()
        return cls(cfg, pipe.voice_encoder, pipe.decoder, pipe.superres, dev)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write config.json + one safetensors file per model (atomically each)."""
        from safetensors.torch import save_model

        from a2v.io import atomic_path

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        mods = {"voice_encoder": self.voice_encoder, "decoder": self.decoder, "superres": self.superres}
        for name, m in mods.items():
            if m is not None:
                with atomic_path(d / f"{name}.safetensors") as tmp:
                    save_model(m, str(tmp))
        save_json(self.cfg, d / "config.json")
        return d

    @torch.no_grad()
    def embed_audio(self, audio: Any) -> torch.Tensor:
        """Audio file path, float32 (S,) waveform at 16 kHz, or a list of them -> unit embeddings (B,D)."""
        items = audio if isinstance(audio, list | tuple) else [audio]
        specs = []
        for a in items:
            if isinstance(a, str | Path):
                specs.append(load_speech(a, self.cfg.audio))
            else:
                specs.append(speech_input(np.asarray(a, np.float32), self.cfg.audio))
        x = torch.from_numpy(np.stack(specs)).to(self.device)  # (B,2,T,D)
        return F.normalize(self.voice_encoder(x).float(), dim=-1)  # (B,2,T,D)->(B,E)

    @torch.no_grad()
    def generate(self, audio: Any = None, *, embedding: torch.Tensor | np.ndarray | None = None, num: int = 1,
                 guidance_w: float | None = None, sampler: str | None = None, num_steps: int | None = None,
                 super_resolve: bool | None = None, seed: int = 0, progress: bool = True) -> np.ndarray:
        """Faces for one voice: uint8 (num,H,W,3) RGB, H = W = 64 or the super-resolution size.

        audio: file path or float32 (S,) at 16 kHz (6 s from the start are used; shorter audio is
        repeated); or ``embedding`` float (D,) to decode a face embedding directly. Settings default
        to ``cfg.sample`` (guidance w, sampler "ancestral" | "ddim" | "dpmsolver++", steps).
        """
        s = self.cfg.sample
        if (audio is None) == (embedding is None):
            raise InputError("give either audio or an embedding to generate faces")
        if embedding is None:
            emb = self.embed_audio(audio)[:1]  # (1,E)
        else:
            emb = torch.as_tensor(embedding, dtype=torch.float32, device=self.device).reshape(1, -1)  # (D,)->(1,D)
            if emb.shape[1] != self.cfg.embedding.dim:
                raise InputError(f"embedding has {emb.shape[1]} values, the model expects {self.cfg.embedding.dim}")
        emb = emb.expand(num, -1)  # (1,E)->(N,E)
        g = torch.Generator(device="cpu").manual_seed(seed)
        d = self.cfg.decoder
        sched = make_scheduler(sampler or s.sampler, d.num_train_timesteps, d.beta_schedule, clip_sample=True)
        steps = None if (sampler or s.sampler) == "ancestral" else (num_steps or s.num_steps)
        x = ddpm_sample(self.decoder, (num, 3, d.image_size_px, d.image_size_px), sched, cond=emb,
                        num_inference_steps=steps, w=s.guidance_w if guidance_w is None else guidance_w,
                        generator=g, device=self.device, progress=progress)  # (N,3,64,64)
        if (s.super_resolve if super_resolve is None else super_resolve) and self.superres is not None:
            x = self.super_resolve(x, g, progress, emb=emb)
        return to_uint8(x)

    @torch.no_grad()
    def super_resolve(self, low: torch.Tensor, generator: torch.Generator | None = None,
                      progress: bool = True, emb: torch.Tensor | None = None) -> torch.Tensor:
        """(N,3,64,64) in [-1,1] -> (N,3,S,S) in [-1,1] with the super-resolution diffusion model.

        ``emb`` (N,D): the face embedding the SR model attends to (needed when ``superres.cross_attention``).
        """
        if self.superres is None:
            raise MissingWeightsError("no super-resolution model in this pipeline (superres.safetensors)")
        sr, s = self.superres, self.cfg.superres
        sched = make_scheduler(self.cfg.sample.sr_sampler, s.num_train_timesteps, s.beta_schedule, clip_sample=True)
        cond, aug_t = augment_low_res(upsample(low.to(self.device), s.image_size_px), sched, s.max_aug_level,
                                      level=s.sample_aug_level)
        steps = None if self.cfg.sample.sr_sampler == "ancestral" else self.cfg.sample.sr_num_steps
        if emb is not None:
            emb = emb.to(self.device)
        return ddpm_sample(lambda x, t, c: sr(x, t, c, aug_t, emb), (low.shape[0], 3, s.image_size_px, s.image_size_px),
                           sched, cond=cond, num_inference_steps=steps, generator=generator, device=self.device,
                           progress=progress)  # (N,3,S,S)
