"""``TonguePipeline``: speech (+ transcript) -> ultrasound tongue video, diffusers style.

    pipe = TonguePipeline.from_pretrained("models/tongue")     # folder written by save_pretrained
    video = pipe.generate(audio="x.wav", text="...")           # uint8 (F,112,112) at pipe.fps
    pipe.write("out.mp4", video, audio="x.wav", reference=gt)  # UTI video with audio, side by side

Folder: ``tongue_config.json`` (the resolved :class:`TongueConfig`), ``pipeline.json`` (stage
kinds and condition widths), ``stage0.safetensors`` [+ ``stage1.safetensors``] or ``dnn.safetensors``.
The speech/text encoders are not copied: their names (or folders) are in the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.config import from_dict, save_json
from a2v.errors import InputError, require_file
from a2v.io import atomic_path, write_json_atomic
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.data import from_unit
from a2v.recipes.tongue.model import ConditionEncoder, FrameDNN, build_denoiser, upsample_video
from a2v.recipes.tongue.sample import cyclic_sample

__all__ = ["TonguePipeline"]


class TonguePipeline:
    """Stages (EDM denoisers, or one FrameDNN) + condition encoder + config; ``generate`` runs them."""

    def __init__(self, cfg: TongueConfig, stages: list[torch.nn.Module], encoder: ConditionEncoder,
                 conditional: bool = True, device: str | torch.device = "cpu") -> None:
        self.cfg, self.stages, self.encoder, self.conditional = cfg, stages, encoder, conditional
        self.device = torch.device(device)
        for m in stages:
            m.to(self.device).eval()

    @property
    def fps(self) -> float:
        return self.cfg.data.fps

    @classmethod
    def from_runs(cls, cfg: TongueConfig, run_dirs: list[str | Path], encoder: ConditionEncoder | None = None,
                  ema: bool = True, device: str | torch.device = "cpu") -> TonguePipeline:
        """Assemble from training run folders (stage 0 [, stage 1]); the latest checkpoint of each, EMA weights."""
        import json

        from a2v.train import latest_checkpoint, load_modules

        enc = encoder or ConditionEncoder.from_config(cfg.cond, device)
        stages, conditional = [], True
        for run in run_dirs:
            meta = json.loads(require_file(Path(run) / "model.json", "tongue run description").read_text())
            ck = latest_checkpoint(run)
            if ck is None:
                raise InputError(f"{run} has no checkpoint yet: train it first")
            m, name = cls._build(cfg, meta, enc.audio_dim, enc.text_dim)
            load_modules(ck, {name: m}, ema=ema)
            stages.append(m)
            conditional = bool(meta["conditional"])
        return cls(cfg, stages, enc, conditional, device)

    @staticmethod
    def _build(cfg: TongueConfig, meta: dict[str, Any], audio_dim: int, text_dim: int | None):
        if meta["model"] == "dnn":
            b = cfg.baseline
            return FrameDNN(audio_dim, meta["size_px"], b.context_frames, b.hidden, b.dropout), "dnn"
        return build_denoiser(cfg, audio_dim, text_dim, meta["stage"], meta["conditional"]), "denoiser"

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write config, stage descriptions and safetensors weights to ``folder``."""
        from safetensors.torch import save_model

        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        save_json(self.cfg, d / "tongue_config.json")
        kinds = []
        for i, m in enumerate(self.stages):
            kind = "dnn" if isinstance(m, FrameDNN) else "edm"
            size = m.size_px if isinstance(m, FrameDNN) else self.cfg.stage_size(i)
            kinds.append({"stage": i, "model": "dnn" if kind == "dnn" else "diffusion", "size_px": size,
                          "conditional": self.conditional})
            with atomic_path(d / f"stage{i}.safetensors") as tmp:
                save_model(m, str(tmp))
        write_json_atomic(d / "pipeline.json", {"stages": kinds, "audio_dim": self.encoder.audio_dim,
                                                "text_dim": self.encoder.text_dim})
        return d

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu",
                        encoder: ConditionEncoder | None = None, overrides: list[str] | None = None) -> TonguePipeline:
        """Load a folder written by :meth:`save_pretrained`; ``overrides`` (``sampler.steps=30``) apply to the config."""
        import json

        from safetensors.torch import load_model

        from a2v.config import merge, parse_overrides

        d = Path(folder)
        raw = json.loads(require_file(d / "tongue_config.json", "tongue pipeline config").read_text())
        cfg = from_dict(TongueConfig, merge(raw, parse_overrides(overrides or [])), str(d / "tongue_config.json"))
        meta = json.loads(require_file(d / "pipeline.json", "tongue pipeline description").read_text())
        enc = encoder or ConditionEncoder.from_config(cfg.cond, device)
        if enc.audio_dim != meta["audio_dim"] or enc.text_dim != meta["text_dim"]:
            raise InputError(f"{d}: trained with audio/text widths {meta['audio_dim']}/{meta['text_dim']}, the "
                             f"configured encoders give {enc.audio_dim}/{enc.text_dim}")
        stages = []
        for s in meta["stages"]:
            m, _ = cls._build(cfg, s, meta["audio_dim"], meta["text_dim"])
            load_model(m, str(require_file(d / f"stage{s['stage']}.safetensors", "tongue stage weights")),
                       strict=True, device=str(device))
            stages.append(m)
        return cls(cfg, stages, enc, bool(meta["stages"][0]["conditional"]), device)

    @torch.no_grad()
    def generate(self, audio: str | Path | np.ndarray, text: str | None = None, seed: int = 0,
                 n_frames: int | None = None, progress: bool = True) -> np.ndarray:
        """Speech -> uint8 (F,S,S) UTI video at ``self.fps``, F = round(duration * fps) unless given.

        audio: a file (any format FFmpeg reads) or float32 (S,) in [-1,1] at 16 kHz; text: the
        transcript (A+T models; None = ``audio``'s ``.txt`` beside it, else ASR).
        """
        from a2v.audio import load_audio, num_video_frames
        from a2v.recipes.tongue.data import read_transcript

        if isinstance(audio, str | Path):
            if text is None and self.encoder.text is not None:
                text = read_transcript(Path(audio), self.cfg.data.transcript_suffix)
            wav = load_audio(audio, sr=self.cfg.data.sample_rate_hz)  # (S,)
        else:
            wav = np.asarray(audio, dtype=np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise InputError(f"audio must be a mono waveform (S,), got shape {wav.shape}")
        F = n_frames or num_video_frames(len(wav), self.cfg.data.sample_rate_hz, self.fps)
        feats = self.encoder.encode_audio(wav, F, self.fps).to(self.device)[None]  # (1,F,Da)
        txt = mask = None
        if self.encoder.text is not None:
            txt = self.encoder.encode_text(self.encoder.transcript(wav, text)).to(self.device)[None]  # (1,L,Dt)
            mask = torch.ones(txt.shape[:2], dtype=torch.bool, device=self.device)  # (1,L)
        if isinstance(self.stages[0], FrameDNN):
            return from_unit(self.stages[0](feats)[0])  # (1,1,F,S,S)->(F,S,S)
        g = torch.Generator(device="cpu").manual_seed(seed)
        video, low = None, None
        for i, den in enumerate(self.stages):
            net = den.net

            def cond_fn(a: int, b: int, net=net) -> torch.Tensor | None:
                return net.encode_condition(feats[:, a:b], txt, mask) if self.conditional else None  # (1,b-a,D)

            size = self.cfg.stage_size(i)
            aug = None
            if net.uses_lowres:
                low = upsample_video(video, size)  # (1,1,F,s,s)->(1,1,F,S,S)
                sig = self.cfg.cascade.aug_sigma_sample
                low = low + sig * torch.randn(low.shape, generator=g).to(self.device)  # CDM: noised at sampling too
                aug = torch.full((1,), float(np.log(max(sig, 0.002)) / 4), device=self.device)
            video = cyclic_sample(den, cond_fn, F, size, self.cfg.data.clip_frames, self.cfg.sampler, self.cfg.edm,
                                  g, lowres=low, aug_level=aug, device=self.device, progress=progress)
        return from_unit(video[0])  # (1,1,F,S,S)->(F,S,S)

    def write(self, path: str | Path, video: np.ndarray, audio: str | Path | np.ndarray | None = None,
              reference: np.ndarray | None = None) -> Path:
        """Write uint8 (F,S,S) as an RGB video with the audio; ``reference`` (F',S',S') ground truth goes to the left.

        With a reference both videos are cut to the shorter, F'' = min(F, F') frames (see
        :meth:`frames_written`), and the audio to F'' / fps seconds.
        """
        from a2v.audio import load_audio
        from a2v.recipes.tongue.ultrasound import resize_frames
        from a2v.video import write_video

        frames = video
        wav = load_audio(audio, sr=16000) if isinstance(audio, str | Path) else audio
        if reference is not None:
            n = self.frames_written(video, reference)
            ref = resize_frames(np.asarray(reference)[:n], video.shape[1])  # (F,S,S)
            frames = np.concatenate([ref, video[:n]], axis=2)  # (F,S,S)+(F,S,S)->(F,S,2S)
            if wav is not None:
                wav = wav[: round(n / self.fps * 16000)]  # (S,)->(S',)
        rgb = (np.repeat(f[..., None], 3, axis=2) for f in frames)  # (S,W)->(S,W,3)
        write_video(path, rgb, self.fps, audio=wav, audio_sr=16000)
        return Path(path)

    @staticmethod
    def frames_written(video: np.ndarray, reference: np.ndarray | None = None) -> int:
        """Frames :meth:`write` puts in the file: F, or min(F, F') beside a reference."""
        return len(video) if reference is None else min(len(video), len(reference))
