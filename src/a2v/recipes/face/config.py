"""Configs of the face recipe (speech -> face photo). Defaults are the paper's settings.

"Speech-to-Face Conversion Using Denoising Diffusion Probabilistic Models": a Speech2Face voice
encoder (Oh et al. 2019) maps 6 s of speech to a face-identity embedding; a 64x64 DDPM decoder
with classifier-free guidance turns the embedding into a face; a diffusion super-resolution model
(Table 1), attending to the embedding too, brings it to 512 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from a2v.errors import ConfigError
from a2v.train import TrainConfig


@dataclass(frozen=True)
class AudioConfig:
    """Voice-encoder input: 6 s from the start (shorter audio repeated), 16 kHz, compressed STFT."""

    sample_rate_hz: int = 16000
    duration_s: float = 6.0
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    power: float = 0.3  # Speech2Face power-law compression


@dataclass(frozen=True)
class EmbeddingConfig:
    """Face-identity embedding: ArcFace 512-d (ONNX file) or dlib's offline 128-d ResNet.

    ``dim`` flows into the voice encoder's output and the decoder's condition size.
    """

    kind: Literal["arcface", "dlib"] = "arcface"
    dim: int = 512
    onnx_path: str = ""  # ArcFace ONNX model (insightface w600k_r50.onnx or similar); "" = not given
    upsample: int = 1  # dlib HOG detector upsampling when finding the face in a picture


@dataclass(frozen=True)
class VoiceEncoderConfig:
    """Speech2Face voice encoder (Oh et al. 2019, Table 1): 4x4 convs, BN, ReLU, max-pool over time.

    ``channels``: conv widths; ``pool_after``: indices of convs followed by a 2x1 max-pool (time);
    ``stride2_after``: indices of convs with stride 2; then average over time, FC ``fc_dim``, FC ``dim``.
    """

    channels: tuple[int, ...] = (64, 64, 128, 128, 128, 256, 512, 512, 512)
    pool_after: tuple[int, ...] = (2, 3, 4, 5)
    stride2: tuple[int, ...] = (7, 8)
    fc_dim: int = 4096
    # LAMB (You et al. 2020) at train_encoder.lr (1e-3), decayed:
    lr_decay: float = 0.95  # x0.95 ...
    lr_decay_every_steps: int = 10_000  # ... every 10k steps
    weight_decay: float = 0.0


@dataclass(frozen=True)
class DecoderConfig:
    """64x64 face decoder U-Net (paper Table 1) and its DDPM (cosine, 2000 steps)."""

    image_size_px: int = 64
    base_channels: int = 256
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    layers_per_block: tuple[int, ...] = (3, 3, 3, 3)
    attention_resolutions_px: tuple[int, ...] = (32, 16, 8)
    num_heads: int = 4
    norm_groups: int = 32
    embed_to_time: bool = True  # also add a projection of the embedding to the time embedding
    dropout: float = 0.0
    cond_dropout_prob: float = 0.1  # classifier-free guidance: condition dropped 10% of the time
    num_train_timesteps: int = 2000
    beta_schedule: str = "squaredcos_cap_v2"  # Nichol & Dhariwal cosine schedule
    optimizer: Literal["lamb", "adamw"] = "lamb"  # Table 1: LAMB at peak train_decoder.lr = 2e-4
    warmup_epochs: float = 20.0  # Table 1: linear LR warm-up over 20 epochs ...
    warmup_start_factor: float = 0.1  # ... from 0.1 x the peak LR


@dataclass(frozen=True)
class SuperResConfig:
    """64 -> 512 px diffusion super-resolution (paper Table 1), conditioned on the upsampled image
    (channel concat) and on the face embedding (cross-attention at the attention levels).

    ``attention_resolutions_px`` must name U-Net levels (``image_size_px / 2**i``); a size that is
    no level is refused, never silently dropped.
    """

    low_res_px: int = 64
    image_size_px: int = 512
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4, 8, 16)
    layers_per_block: tuple[int, ...] = (1, 1, 2, 4, 8)
    attention_resolutions_px: tuple[int, ...] = (32,)  # the coarsest level: 512 / 2**4
    cross_attention: bool = True  # cross-attention (num_heads) to the face embedding at the attention levels
    num_heads: int = 4
    norm_groups: int = 16
    dropout: float = 0.0
    num_train_timesteps: int = 2000
    beta_schedule: str = "squaredcos_cap_v2"
    max_aug_level: float = 0.5  # noise-conditioning augmentation: aug t ~ U[0, max] x T during training
    sample_aug_level: float = 0.0  # fixed augmentation level at sampling time (fraction of T)
    optimizer: Literal["lamb", "adamw"] = "lamb"  # Table 1: LAMB at peak train_sr.lr = 5e-5
    warmup_epochs: float = 20.0  # Table 1: linear LR warm-up over 20 epochs ...
    warmup_start_factor: float = 0.1  # ... from 0.1 x the peak LR


@dataclass(frozen=True)
class SampleConfig:
    """Generation settings: guidance weight w in eps = (1+w) eps(x,c) - w eps(x), sampler, steps."""

    guidance_w: float = 4.0
    sampler: Literal["ancestral", "ddim", "dpmsolver++"] = "dpmsolver++"
    num_steps: int = 50  # ignored by "ancestral" (all training steps)
    sr_sampler: Literal["ancestral", "ddim", "dpmsolver++"] = "dpmsolver++"
    sr_num_steps: int = 25
    super_resolve: bool = True
    # ours: faces sampled (decoder size, this sampler) at the end of decoder training and checked with
    # dlib's face detector ("faces found k/N", a warning when fewer than half); 0 = off
    check_faces: int = 4


@dataclass(frozen=True)
class FaceConfig:
    """Whole recipe: audio, embedding, models, sampling and one TrainConfig per stage."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    voice: VoiceEncoderConfig = field(default_factory=VoiceEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    superres: SuperResConfig = field(default_factory=SuperResConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    train_encoder: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=128, lr=1e-3, max_steps=200_000))
    # Table 1: LAMB, peak LR 2e-4 (decoder) / 5e-5 (SR), SR batch 128; decoder batch, steps, EMA: ours
    train_decoder: TrainConfig = field(
        default_factory=lambda: TrainConfig(batch_size=64, lr=2e-4, max_steps=500_000, ema_decay=0.9999))
    train_sr: TrainConfig = field(
        default_factory=lambda: TrainConfig(batch_size=128, lr=5e-5, max_steps=500_000, ema_decay=0.9999))
    frames_per_clip: int = 1  # face frames taken per talking-face clip (evenly spaced)
    # for `a2v prepare face` (PrepareConfig keys); the detector is chosen at start when not given
    # (a2v.recipes.face.prepare.choose_detector); faces from 64 px (ours: not the talk recipe's 200 px)
    prepare: dict[str, Any] = field(default_factory=lambda: {"fps": 25.0, "detect_every_frames": 10,
                                                             "min_face_px": 64.0, "crop_size_px": 256})

    def __post_init__(self) -> None:
        d, s = self.decoder, self.superres
        if len(d.channel_mult) != len(d.layers_per_block):
            raise ConfigError("decoder.channel_mult and decoder.layers_per_block must have the same length")
        if len(s.channel_mult) != len(s.layers_per_block):
            raise ConfigError("superres.channel_mult and superres.layers_per_block must have the same length")
        if s.low_res_px != d.image_size_px:
            raise ConfigError(f"superres.low_res_px ({s.low_res_px}) must equal decoder.image_size_px "
                              f"({d.image_size_px})")
        for name, sec in (("decoder", d), ("superres", s)):
            levels = [sec.image_size_px // 2**i for i in range(len(sec.channel_mult))]
            missing = sorted(set(sec.attention_resolutions_px) - set(levels))
            if missing:
                raise ConfigError(f"{name}.attention_resolutions_px {missing} px are not U-Net levels "
                                  f"(levels of a {sec.image_size_px} px model: {levels}): attention there would "
                                  "silently vanish; choose among the levels")
            if sec.warmup_epochs < 0 or not 0 < sec.warmup_start_factor <= 1:
                raise ConfigError(f"{name}.warmup_epochs must be >= 0 and {name}.warmup_start_factor in (0, 1]")
        if self.embedding.dim < 1:
            raise ConfigError("embedding.dim must be >= 1")
        if self.embedding.kind == "dlib" and self.embedding.dim != 128:
            raise ConfigError("embedding.kind=dlib gives 128-d embeddings: set embedding.dim=128")
