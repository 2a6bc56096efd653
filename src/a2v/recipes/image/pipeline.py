"""``ImagePipeline``: sound -> embedding -> picture, saved and loaded in the diffusers style.

    pipe = ImagePipeline.from_pretrained("runs/image/pipeline")
    picture = pipe.generate(audio="dog.wav")            # uint8 (H,W,3) RGB
    emb = pipe.embed_audio("dog.wav")                   # float32 (E,), L2-normalised

A pipeline folder holds ``config.json`` (the whole ImageConfig) and, with the WavLM encoder,
``audio_head.safetensors``, ``audio_proj.safetensors`` (CXLoss's g) and, when WavLM was fine-tuned,
``speech/`` (its weights); with the Wav2CLIP encoder (``audio.kind=wav2clip``) ``audio_encoder.safetensors``. The frozen image tower and the VQGAN are
pretrained models referenced by the config (``tower.*``, ``generate.vq.*``) and loaded on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from a2v.config import from_dict, to_dict
from a2v.errors import InputError
from a2v.recipes.image.config import ImageConfig
from a2v.recipes.image.model import AudioEncoder, AudioHead

HEAD_FILE = "audio_head.safetensors"
PROJ_FILE = "audio_proj.safetensors"
W2C_FILE = "audio_encoder.safetensors"


def _upgrade(raw: dict) -> dict:
    """A pipeline config.json written before loss kinds were renamed and BriVL took detector boxes: loss "cxloss"
    without projections was the momentum contrast, "wav2clip" the plain InfoNCE; BriVL towers used grid boxes."""
    loss, tower = raw.get("loss", {}), raw.get("tower", {})
    if "learn_temperature" not in loss and loss.get("kind") in ("cxloss", "wav2clip"):
        loss["kind"] = {"cxloss": "moco", "wav2clip": "infonce"}[loss["kind"]]
    if tower.get("kind") == "brivl" and "brivl_boxes" not in tower:
        tower["brivl_boxes"] = "grid"
    return raw


class ImagePipeline:
    """Audio encoder (+ lazily loaded image tower and VQ decoder) of the ``image`` recipe."""

    def __init__(self, cfg: ImageConfig, audio: AudioEncoder, tower=None, vq=None,
                 device: str | torch.device = "cpu") -> None:
        self.cfg, self.audio = cfg, audio.to(device).eval()
        self._tower, self._vq = tower, vq
        self.device = torch.device(device)

    @property
    def tower(self):
        """The frozen image tower (built from ``cfg.tower`` on first use)."""
        if self._tower is None:
            from a2v.recipes.image.towers import build_tower

            self._tower = build_tower(self.cfg.tower, self.device)
        return self._tower.to(self.device)

    @property
    def vq(self):
        """The frozen VQ decoder (built from ``cfg.generate.vq`` on first use)."""
        if self._vq is None:
            from a2v.recipes.image.generate.vqgan import build_vq

            self._vq = build_vq(self.cfg.generate.vq, self.device)
        return self._vq.to(self.device)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu",
                        overrides: list[str] | None = None) -> ImagePipeline:
        """Load a folder written by :meth:`save_pretrained` (MissingWeightsError names a missing file).

        ``overrides``: ``["generate.steps=100", "generate.vq.path=/models/vq"]`` applied to the saved config
        (settings of generation, tower or VQ paths; the audio model's shape comes from the folder).
        """
        from safetensors import safe_open
        from safetensors.torch import load_model

        from a2v.encoders import SpeechEncoder
        from a2v.errors import MissingWeightsError

        d = Path(folder)
        if not (d / "config.json").is_file():
            raise MissingWeightsError(f"image pipeline file not found: {d / 'config.json'} (give the folder written "
                                      "by a2v image train, e.g. runs/image/pipeline)")
        cfg = from_dict(ImageConfig, _upgrade(json.loads((d / "config.json").read_text(encoding="utf-8"))), str(d))
        if overrides:
            from a2v.config import replace

            cfg = replace(cfg, overrides)
        weights = d / (W2C_FILE if cfg.audio.kind == "wav2clip" else HEAD_FILE)
        if not weights.is_file():
            raise MissingWeightsError(f"image pipeline file not found: {weights} (give the folder written by "
                                      "a2v image train or a2v image import-wav2clip)")
        if cfg.audio.kind == "wav2clip":
            from a2v.recipes.image.model import Projection
            from a2v.recipes.image.wav2clip import EMBED_DIM, Wav2CLIPAudioEncoder

            with safe_open(str(weights), "pt") as f:
                has_transform = any(k.startswith("transform.") for k in f.keys())  # noqa: SIM118 - not a dict
            audio = Wav2CLIPAudioEncoder(Projection(EMBED_DIM) if has_transform else None)
            load_model(audio, str(weights), strict=True)
            return cls(cfg, audio, device=device)
        speech_src = d / "speech" if (d / "speech" / "config.json").is_file() else cfg.audio.encoder
        speech = SpeechEncoder.from_pretrained(speech_src, layer="last", freeze=True, progress=False)
        meta = json.loads((d / "audio_head.json").read_text(encoding="utf-8")) if (d / "audio_head.json").is_file() \
            else {}
        embed_dim = int(meta.get("embed_dim", 0))
        if not embed_dim:
            with safe_open(str(d / HEAD_FILE), "pt") as f:
                embed_dim = int(f.get_slice("mlp.2.weight").get_shape()[0])
        head = AudioHead(speech.num_layers + 1, speech.dim, embed_dim, cfg.audio)
        load_model(head, str(d / HEAD_FILE), strict=True)
        proj = None
        if (d / PROJ_FILE).is_file():
            from a2v.recipes.image.model import Projection

            proj = Projection(embed_dim, cfg.loss.proj_dropout)
            load_model(proj, str(d / PROJ_FILE), strict=True)
        return cls(cfg, AudioEncoder(speech, head, proj), device=device)

    @classmethod
    def from_wav2clip(cls, ckpt: str | os.PathLike, cfg: ImageConfig | None = None,
                      device: str | torch.device = "cpu") -> ImagePipeline:
        """Wav2CLIP's released audio encoder (``ResNet_CX.ckpt`` or its safetensors conversion) as a pipeline:
        ``cfg`` (default: CLIP ViT-B/32 tower, the VQGAN of the paper config) with ``audio.kind=wav2clip``."""
        from dataclasses import replace

        from a2v.recipes.image.wav2clip import load_wav2clip

        cfg = cfg or ImageConfig()
        cfg = replace(cfg, audio=replace(cfg.audio, kind="wav2clip"))
        return cls(cfg, load_wav2clip(ckpt), device=device)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write config.json, audio_head.safetensors (+ speech/ when WavLM is not frozen); returns the folder."""
        from safetensors.torch import save_model

        from a2v.io import atomic_path, write_json_atomic

        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        if not isinstance(self.audio, AudioEncoder):  # Wav2CLIP: one file, ResNet (+ its projection g)
            with atomic_path(d / W2C_FILE) as tmp:
                save_model(self.audio, str(tmp))
            write_json_atomic(d / "audio_head.json", {"embed_dim": int(self.audio.out_dim), "kind": "wav2clip"})
            write_json_atomic(d / "config.json", to_dict(self.cfg))
            return d
        speech = self.audio.speech
        if not getattr(speech, "frozen", True):
            from transformers import Wav2Vec2FeatureExtractor

            speech.backbone.save_pretrained(d / "speech")
            Wav2Vec2FeatureExtractor(do_normalize=speech.do_normalize,
                                     return_attention_mask=speech.use_attention_mask).save_pretrained(d / "speech")
        with atomic_path(d / HEAD_FILE) as tmp:
            save_model(self.audio.head, str(tmp))
        if self.audio.proj is not None:
            with atomic_path(d / PROJ_FILE) as tmp:
                save_model(self.audio.proj, str(tmp))
        write_json_atomic(d / "audio_head.json", {"embed_dim": self.audio.head.out_dim,
                                                  "speech_model": str(self.cfg.audio.encoder)})
        write_json_atomic(d / "config.json", to_dict(self.cfg))
        return d

    def load_checkpoint(self, ckpt_dir: str | os.PathLike, ema: bool = True) -> None:
        """Take the online head (and fine-tuned WavLM) weights of a training checkpoint folder."""
        from a2v.recipes.image.model import CrossModalContrast
        from a2v.train import load_modules

        wavlm = isinstance(self.audio, AudioEncoder)
        if wavlm:
            head = self.audio.head
        else:  # trained as the bare ResNet ("head"); its projection g lives in the loss module
            from a2v.recipes.image.wav2clip import Wav2CLIPAudioEncoder

            head = Wav2CLIPAudioEncoder(None, encoder=self.audio.encoder)
        mods: dict[str, torch.nn.Module] = {"head": head}
        if wavlm and not getattr(self.audio.speech, "frozen", True):
            mods["speech"] = self.audio.speech
        proj = self.audio.proj if wavlm else self.audio.transform
        if proj is not None:  # CXLoss: g is trained inside the loss module
            mods["contrast"] = CrossModalContrast(int(getattr(head, "out_dim", 0)), self.cfg.loss)
        load_modules(ckpt_dir, mods, ema=ema, device=self.device)
        if proj is not None:
            proj.load_state_dict(mods["contrast"].audio_proj.state_dict())

    def _wave(self, audio: str | os.PathLike | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(audio, str | os.PathLike):
            from a2v.audio import load_audio

            audio = load_audio(audio, sr=16000)  # (S,)
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        if wav.ndim != 1:
            raise InputError(f"audio must be a mono (S,) waveform at 16 kHz, got shape {tuple(wav.shape)}")
        if wav.shape[0] < 400:
            raise InputError(f"audio too short: {wav.shape[0]} samples (at least 400, 25 ms at 16 kHz)")
        return wav

    @torch.no_grad()
    def embed_audio(self, audio: str | os.PathLike | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Audio file or float32 (S,) 16 kHz waveform -> float32 (E,) L2-normalised embedding (CPU).

        Audio longer than ``audio.clip_s`` is embedded in consecutive windows of that length, averaged.
        """
        wav = self._wave(audio)  # (S,)
        n = round(self.cfg.audio.clip_s * 16000)
        chunks = [wav[s:s + n] for s in range(0, wav.shape[0], n)]
        chunks = [c for c in chunks if c.shape[0] >= 400] or chunks[:1]  # a tail under 25 ms adds nothing
        n = max(c.shape[0] for c in chunks)
        lengths = torch.tensor([c.shape[0] for c in chunks])  # (B,)
        batch = torch.stack([torch.nn.functional.pad(c, (0, n - c.shape[0])) for c in chunks])  # (B,S)
        emb = self.audio(batch.to(self.device), lengths.to(self.device))  # (B,S)->(B,E)
        return torch.nn.functional.normalize(emb.float().mean(0), dim=-1).cpu()  # (B,E)->(E,)

    def generate(self, audio: str | os.PathLike | np.ndarray | torch.Tensor, steps: int | None = None,
                 init_image: str | os.PathLike | np.ndarray | None = None, video: str | os.PathLike | None = None,
                 seed: int | None = None, progress: bool = True) -> np.ndarray:
        """A picture for a sound: uint8 (H,W,3) RGB, H,W = ``generate.size_px``.

        ``init_image``: a file or uint8 (H,W,3) to start from; ``video``: also write the optimisation
        as an MP4 (one frame every ``generate.video_every`` steps); ``seed`` overrides ``generate.seed``.
        """
        from dataclasses import replace

        from a2v.recipes.image.generate.vqgan import optimise_latents

        target = self.embed_audio(audio)  # (E,)
        cfg = self.cfg.generate if seed is None else replace(self.cfg.generate, seed=int(seed))
        init = None
        if init_image is not None:
            from a2v.video import load_image

            arr = load_image(init_image) if isinstance(init_image, str | os.PathLike) else np.asarray(init_image)
            init = torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0  # (H,W,3)->(3,H,W)
        frames: list[np.ndarray] = []
        picture, _ = optimise_latents(self.vq, self.tower, target, cfg, init, steps, progress,
                                      on_frame=(lambda i, f: frames.append(f)) if video is not None else None)
        if video is not None:
            from a2v.video import write_video

            write_video(video, frames, cfg.video_fps)
        return picture
