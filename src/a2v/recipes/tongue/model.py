"""Tongue models: condition encoder (wav2vec 2.0 + BERT, frozen), fused-condition 3-D U-Net denoiser, DNN baseline.

Yang et al. 2024 (ICASSP), method: speech features from a frozen wav2vec 2.0 (XLSR-53) resampled
to the UTI frame rate, text features from BERT; audio frames attend to text tokens
(cross-attention) giving one condition vector f_c per frame; a space-time U-Net with
time-aware layers and cross-attention to f_c is the EDM network F. Stage 1 of the cascade also
sees the upsampled stage-0 video (an extra input channel) and its augmentation level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2v.diffusion import EDMPrecond
from a2v.nn.fusion import CrossAttentionFusion
from a2v.nn.unet3d import UNet3D
from a2v.recipes.tongue.config import ConditionConfig, TongueConfig

__all__ = ["ConditionEncoder", "TongueNet", "build_denoiser", "FrameDNN", "lowres_condition"]


class ConditionEncoder:
    """Per-utterance condition features: ``(audio float32 (F,Da) at the UTI fps, text float32 (L,Dt) | None)``.

    ``audio_features="ssl"``: a frozen :class:`a2v.encoders.SpeechEncoder` (50 Hz) linearly
    resampled to the frame rate; ``"logmel"``: an 80-band log-mel (100 Hz), scaled by 1/20 dB.
    Text: the transcript (``Utterance.text``, else ASR via :func:`a2v.encoders.transcribe`)
    through a frozen :class:`a2v.encoders.TextEncoder`.
    """

    def __init__(self, cfg: ConditionConfig, speech: Any = None, text: Any = None) -> None:
        self.cfg, self.speech, self.text = cfg, speech, text

    @classmethod
    def from_config(cls, cfg: ConditionConfig, device: str | torch.device = "cpu") -> ConditionEncoder:
        """Load the encoders named in ``cfg`` (folders or hub ids); MissingWeightsError when absent.

        The error names the config key to set (``cond.audio_encoder`` / ``cond.text_encoder``).
        ``cfg.language="auto"`` is settled as English here; ``a2v tongue train`` settles it from
        the prepared folder first (:meth:`ConditionConfig.resolved`).
        """
        from a2v.encoders import SpeechEncoder, TextEncoder

        cfg = cfg.resolved(None)
        layer: str | int = int(cfg.audio_layer) if cfg.audio_layer.lstrip("-").isdigit() else cfg.audio_layer
        speech = SpeechEncoder.from_pretrained(cfg.audio_encoder, layer=layer, device=device, progress=False,
                                               set_key="cond.audio_encoder") if cfg.audio_features == "ssl" else None
        text = TextEncoder.from_pretrained(cfg.text_encoder, device=device, set_key="cond.text_encoder") \
            if cfg.use_text else None
        return cls(cfg, speech, text)

    @property
    def audio_dim(self) -> int:
        return self.speech.dim if self.speech is not None else self.cfg.n_mels

    @property
    def text_dim(self) -> int | None:
        return self.text.dim if self.text is not None else None

    @torch.no_grad()
    def encode_audio(self, wav: np.ndarray, n_frames: int, fps: float, sr: int = 16000) -> torch.Tensor:
        """wav float32 (S,) at 16 kHz -> float32 (n_frames, Da), one row per UTI frame at ``fps``."""
        from a2v.audio import align_features, log_mel

        if self.speech is not None:
            feats = self.speech(wav).float().cpu().numpy()  # (S,)->(T,D) at 50 Hz
            rate = self.speech.frame_rate_hz
        else:
            feats = log_mel(wav, sr, n_mels=self.cfg.n_mels) / 20.0  # (S,)->(T,80) at 100 Hz, ~unit scale
            rate = 100.0
        return torch.from_numpy(align_features(feats, rate, fps, n_frames, "linear"))  # (T,D)->(F,D)

    @torch.no_grad()
    def encode_text(self, text: str) -> torch.Tensor:
        """A transcript -> float32 (L,Dt) token embeddings."""
        emb, mask = self.text.encode([text])  # (1,L,Dt), (1,L)
        return emb[0, mask[0]].float().cpu()  # (L,Dt)

    def transcript(self, wav: np.ndarray, text: str | None, sr: int = 16000) -> str:
        """The given text, else recognised speech: Whisper (``cond.asr_model``, in ``cond.language``) or
        PocketSphinx (English only; a Mandarin corpus without a Whisper model is a ConfigError)."""
        if text:
            return text
        from a2v.encoders import transcribe
        from a2v.errors import ConfigError

        model = self.cfg.asr_model or None
        lang = self.cfg.language if self.cfg.language != "auto" else "en"
        if lang != "en" and (self.cfg.asr_backend == "pocketsphinx" or model is None):
            raise ConfigError(f"no transcript and cond.language={lang}: PocketSphinx recognises English only; give "
                              f"the transcripts or a Whisper model, e.g. --set cond.asr_model=/models/whisper-small")
        return transcribe(wav, sr, backend=self.cfg.asr_backend, model=model, progress=False,
                          language=lang if model is not None else None).text or " "

    def __call__(self, utt: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        audio = self.encode_audio(utt.wav, len(utt.frames), utt.fps)  # (F,Da)
        if self.text is None:
            return audio, None
        return audio, self.encode_text(self.transcript(utt.wav, utt.text))  # (L,Dt)


class TongueNet(nn.Module):
    """EDM raw network F: ``forward(x_in (B,1,F,H,W), c_noise (B,), cond f_c (B,F,D) | None, lowres, aug_level)``.

    ``encode_condition(audio (B,F,Da), text (B,L,Dt) | None, text_mask (B,L) | None) -> f_c (B,F,D)``.
    ``lowres``: float (B,1,F,H,W) upsampled stage-0 video (stage 1 only), ``aug_level`` (B,) its
    augmentation level on the c_noise scale. Returns float (B,1,F,H,W).
    """

    def __init__(self, cfg: TongueConfig, audio_dim: int, text_dim: int | None, stage: int = 0,
                 conditional: bool = True) -> None:
        super().__init__()
        c, u = cfg.cond, cfg.unet
        self.conditional = conditional
        self.uses_lowres = cfg.num_stages == 2 and stage == 1
        self.fusion = CrossAttentionFusion(audio_dim, text_dim if c.use_text else None, c.dim, c.heads,
                                           c.fusion_layers) if conditional else None
        self.unet = UNet3D(1 + int(self.uses_lowres), 1, u.channels, u.channel_mults, u.num_res_blocks,
                           u.attn_levels, c.dim if conditional else None, u.heads, cross_window=u.cross_window,
                           dropout=u.dropout, aug_embedding=self.uses_lowres)

    def encode_condition(self, audio: torch.Tensor, text: torch.Tensor | None = None,
                         text_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        if self.fusion is None:
            return None
        return self.fusion(audio, text, text_mask)  # (B,F,Da),(B,L,Dt)->(B,F,D)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None,
                lowres: torch.Tensor | None = None, aug_level: torch.Tensor | None = None) -> torch.Tensor:
        if self.uses_lowres:
            if lowres is None:
                raise ValueError("the stage-1 network needs the upsampled stage-0 video (lowres)")
            x_in = torch.cat([x_in, lowres.to(x_in.dtype)], dim=1)  # (B,1,F,H,W)->(B,2,F,H,W)
        return self.unet(x_in, c_noise, cond, aug_level=aug_level)  # (B,C,F,H,W)->(B,1,F,H,W)


def build_denoiser(cfg: TongueConfig, audio_dim: int, text_dim: int | None, stage: int = 0,
                   conditional: bool = True) -> EDMPrecond:
    """EDM denoiser D(x; sigma, f_c) around a :class:`TongueNet`; the CFG null condition is learned (D,)."""
    net = TongueNet(cfg, audio_dim, text_dim, stage, conditional)
    null = torch.zeros(cfg.cond.dim) if conditional else None
    return EDMPrecond(net, cfg.edm.sigma_data, cfg.edm.sigma_min, cfg.edm.sigma_max, null_cond=null,
                      learn_null_cond=conditional)


def lowres_condition(video: torch.Tensor, low_px: int) -> torch.Tensor:
    """Cascade condition from a full-size video: area-downsample to ``low_px`` then bilinear-upsample back.

    video float (B,1,F,H,W) -> (B,1,F,H,W); the stage-0 output is upsampled the same way at sampling.
    """
    B, C, Fr, H, W = video.shape
    x = video.transpose(1, 2).reshape(B * Fr, C, H, W)  # (B,1,F,H,W)->(BF,1,H,W)
    x = F.interpolate(x, size=(low_px, low_px), mode="area")  # (BF,1,H,W)->(BF,1,h,w)
    return upsample_video(x.reshape(B, Fr, C, low_px, low_px).transpose(1, 2), H)  # (B,1,F,h,w)->(B,1,F,H,W)


def upsample_video(video: torch.Tensor, size_px: int) -> torch.Tensor:
    """Bilinear resize of float (B,C,F,h,w) frames to (B,C,F,size,size)."""
    B, C, Fr, h, w = video.shape
    x = video.transpose(1, 2).reshape(B * Fr, C, h, w)  # (B,C,F,h,w)->(BF,C,h,w)
    x = F.interpolate(x, size=(size_px, size_px), mode="bilinear", align_corners=False)  # (BF,C,S,S)
    return x.reshape(B, Fr, C, size_px, size_px).transpose(1, 2)  # (BF,C,S,S)->(B,C,F,S,S)


class FrameDNN(nn.Module):
    """Porras et al. 2019 DNN baseline: acoustic frames with +-k context -> one UTI frame, fully connected, MSE.

    ``forward(audio float (B,F,Da)) -> float (B,1,F,S,S)`` (target range [-1,1], linear output).
    """

    def __init__(self, audio_dim: int, size_px: int, context_frames: int = 5,
                 hidden: tuple[int, ...] = (1000, 1000, 1000), dropout: float = 0.1) -> None:
        super().__init__()
        self.k, self.size_px = context_frames, size_px
        layers: list[nn.Module] = []
        d = (2 * context_frames + 1) * audio_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, size_px * size_px))
        self.mlp = nn.Sequential(*layers)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        B, Fr, _ = audio.shape
        x = F.pad(audio.transpose(1, 2), (self.k, self.k), mode="replicate")  # (B,Da,F)->(B,Da,F+2k)
        x = x.unfold(2, 2 * self.k + 1, 1)  # (B,Da,F+2k)->(B,Da,F,2k+1)
        x = x.permute(0, 2, 3, 1).reshape(B, Fr, -1)  # (B,Da,F,2k+1)->(B,F,(2k+1)Da)
        y = self.mlp(x)  # (B,F,(2k+1)Da)->(B,F,S*S)
        return y.reshape(B, Fr, 1, self.size_px, self.size_px).transpose(1, 2)  # (B,F,S*S)->(B,1,F,S,S)
