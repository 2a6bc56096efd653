"""Settings of the tongue recipe (speech + transcript -> ultrasound tongue imaging video).

Defaults are the paper's: Yang et al. 2024, "An audio-textual diffusion model for converting
speech signals into ultrasound tongue imaging data" (ICASSP 2024): UTI at 60 fps, frozen
wav2vec 2.0 XLSR-53 + BERT, cross-attention fusion, 3-D U-Net denoiser, EDM with sigma_min 0.002,
sigma_max 160, sigma_data 0.25, lr 5e-4, EDM's stochastic sampler, outputs at 64/96/112 px,
40 training / 4 test speakers.
Each value is marked: "paper", "EDM" (Karras et al. 2022 defaults the paper builds on without
restating: P_mean/P_std, EMA, rho, sampler churn), "CDM"/"CFG" (Ho et al.'s cascade and guidance
practice) or "ours" (not in the paper: clip length, widths, steps, dropout rates, split).
docs/tongue.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from a2v.errors import ConfigError
from a2v.train import TrainConfig


@dataclass(frozen=True)
class DataConfig:
    """UTI frames and audio. ``fps``: target frame rate (0 = keep each recording's own rate)."""

    fps: float = 60.0  # paper: UTI resampled to 60 fps
    clip_frames: int = 16  # ours: frames per training clip
    view: Literal["fan", "raw"] = "fan"  # fan = scan-converted (Cartesian) image; raw = scanlines x depth
    fan_height_px: int = 256  # height of the scan-converted image before resizing
    sample_rate_hz: int = 16000
    sync: bool = True  # apply the .param TimeInSecsOfFirstFrame offset (UltraSuite sync rule)
    transcript_suffix: str = ".txt"  # transcript file beside the audio (first line = prompt)
    holdout_fraction: float = 0.1  # ours: share kept out of training (utterances, or speakers with split_by=speaker)
    split_by: Literal["utterance", "speaker"] = "utterance"  # speaker: no test speaker in training (paper: 40/4)
    holdout_speakers: int = 0  # split_by=speaker: number of test speakers (0 = holdout_fraction of them)
    test_speakers: tuple[str, ...] = ()  # split_by=speaker: these speaker folders are the test set
    videos: Literal["auto", "ultrasound", "ignore"] = "auto"  # auto: videos are UTI only where no .ult is found
    video_crop_px: tuple[int, ...] = ()  # (x, y, width, height) of the ultrasound panel in a video; () = whole frame

    def __post_init__(self) -> None:
        if len(self.video_crop_px) not in (0, 4) or any(v < 0 for v in self.video_crop_px) or (
                self.video_crop_px and min(self.video_crop_px[2:]) < 1):
            raise ConfigError(f"data.video_crop_px must be [x, y, width, height] (px, width/height >= 1), "
                              f"got {list(self.video_crop_px)}")


# BERT for the transcripts, by corpus language: the paper's corpus is Mandarin (bert-base-chinese);
# UltraSuite and TaL are English.
TEXT_ENCODERS: dict[str, str] = {"en": "bert-base-uncased", "zh": "bert-base-chinese"}


@dataclass(frozen=True)
class ConditionConfig:
    """Speech (and text) conditioning; ``audio_features="logmel"`` is a cheap non-SSL option (ours).

    ``language``: the corpus language, "auto" = from the prepared folder's transcripts (CJK
    characters -> "zh", else "en"); it picks the text encoder when ``text_encoder`` is "" and the
    ASR (PocketSphinx is English only: Mandarin needs Whisper, ``asr_model``).
    """

    audio_features: Literal["ssl", "logmel"] = "ssl"
    audio_encoder: str = "facebook/wav2vec2-large-xlsr-53"  # paper: wav2vec 2.0 XLSR-53 (multilingual)
    audio_layer: str = "last"  # ours (paper: not stated)
    n_mels: int = 80  # logmel option
    use_text: bool = True  # A+T (True) or A (False)
    language: Literal["auto", "en", "zh"] = "auto"
    text_encoder: str = ""  # "" = TEXT_ENCODERS[language]; paper: BERT (bert-base-chinese, Mandarin corpus)
    asr_backend: Literal["auto", "whisper", "pocketsphinx"] = "auto"  # when no transcript file
    asr_model: str = ""  # Whisper folder or hub id; "" = PocketSphinx (offline, English only)
    dim: int = 256  # ours: fused condition width D of f_c
    heads: int = 4  # ours
    fusion_layers: int = 1  # ours

    def resolved(self, language: str | None) -> ConditionConfig:
        """This config with ``language`` settled ("auto" -> ``language`` or "en") and the text encoder named."""
        from dataclasses import replace

        lang = self.language if self.language != "auto" else (language or "en")
        if lang not in TEXT_ENCODERS:
            raise ConfigError(f"cond.language must be one of {sorted(TEXT_ENCODERS)} or auto, got {lang!r}")
        return replace(self, language=lang, text_encoder=self.text_encoder or TEXT_ENCODERS[lang])


@dataclass(frozen=True)
class UNetConfig:
    """3-D U-Net widths (ours; the paper gives no sizes)."""

    channels: int = 64  # ours (as every UNet setting)
    channel_mults: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_levels: tuple[int, ...] = (1, 2)
    heads: int = 4
    cross_window: int = 2  # condition frames either side a pixel attends to
    dropout: float = 0.0  # ours (the paper states none)


@dataclass(frozen=True)
class EDMConfig:
    """EDM (Karras et al. 2022, Table 1) with the paper's noise range and data std."""

    sigma_min: float = 0.002  # paper (= EDM)
    sigma_max: float = 160.0  # paper (EDM: 80)
    sigma_data: float = 0.25  # paper (EDM: 0.5)
    P_mean: float = -1.2  # EDM Table 1 (the paper does not restate the training noise distribution)
    P_std: float = 1.2  # EDM Table 1
    cond_dropout_prob: float = 0.1  # CFG practice (Ho & Salimans 2022); the paper states no rate


@dataclass(frozen=True)
class SamplerConfig:
    """EDM sampler (Karras et al. 2022). The paper samples with EDM's stochastic sampler (Algorithm 2,
    ``heun_sde``) and gives no values for its settings: S_churn/S_tmin/S_tmax/S_noise are EDM's
    ImageNet-64 values (EDM Table 5); ``S_churn = 0`` or ``name="heun"`` is the deterministic
    Algorithm 1. Heun needs about 16+ steps over sigma 160 -> 0.002: at 4 steps its correction
    overshoots (output std 3.5x too large on Gaussian data, docs/tongue.md)."""

    name: Literal["heun", "heun_sde", "euler"] = "heun_sde"  # paper: EDM stochastic sampler
    steps: int = 40  # ours (paper: not given): output std within 6 % on N(0, sigma_data^2) data
    rho: float = 7.0  # EDM
    S_churn: float = 40.0  # EDM Table 5 (ImageNet-64); the paper gives no value
    S_tmin: float = 0.05  # EDM Table 5
    S_tmax: float = 50.0  # EDM Table 5
    S_noise: float = 1.003  # EDM Table 5
    guidance_scale: float = 1.0  # ours: 1 = plain conditional, >1 stronger condition
    overlap_frames: int = 4  # ours: cyclic long-utterance sampling, frames carried into the next window


@dataclass(frozen=True)
class CascadeConfig:
    """Stage 0 at low resolution, stage 1 at full resolution conditioned on the upsampled stage-0 video."""

    enabled: bool = True  # ours: two-stage cascade after CDM (Ho et al. 2022); the paper reports 64/96/112 px
    stage0_size_px: int = 64  # ours: the paper's smallest output size as the base stage
    stage1_size_px: int = 112  # paper: largest output size (Table 2 sizes 64 / 96 / 112)
    aug_sigma_max: float = 0.5  # ours: training condition noise ~ U[0, max] (CDM practice, Ho et al. 2022)
    aug_sigma_sample: float = 0.1  # sampling: fixed condition noise level (ours)


@dataclass(frozen=True)
class BaselineConfig:
    """DNN articulatory-to-acoustic inversion baseline (Porras et al. 2019): frame-wise MLP, MSE."""

    context_frames: int = 5  # acoustic frames either side
    hidden: tuple[int, ...] = (1000, 1000, 1000)
    dropout: float = 0.1


@dataclass(frozen=True)
class MetricsConfig:
    """Evaluation as in the paper: LPIPS with the VGG backbone, "FID" = Fréchet distance of I3D features."""

    lpips_net: Literal["alex", "vgg", "squeeze"] = "vgg"  # paper: LPIPS (VGG)
    lpips_weights: str = ""  # torchvision backbone file; "" = <torch hub checkpoints>/vgg16-397923af.pth
    i3d_weights: str = ""  # InceptionI3d state dict; "" = <torch hub checkpoints>/rgb_imagenet.pt
    i3d_width: float = 1.0  # channel multiplier of that file's network (1 = the published I3D)


@dataclass(frozen=True)
class TongueConfig:
    model: Literal["diffusion", "dnn"] = "diffusion"
    image_size_px: int = 112  # single-stage / DNN output size (cascade: stage sizes below)
    data: DataConfig = field(default_factory=DataConfig)
    cond: ConditionConfig = field(default_factory=ConditionConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    cascade: CascadeConfig = field(default_factory=CascadeConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # lr 5e-4: paper; EMA of the weights: EDM practice (decay ours); batch, steps: ours
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-4, ema_decay=0.999, batch_size=8,
                                                                   max_steps=100_000, ckpt_every=5000))

    def __post_init__(self) -> None:
        div = 2 ** (len(self.unet.channel_mults) - 1)
        for name, v in (("image_size_px", self.image_size_px), ("cascade.stage0_size_px", self.cascade.stage0_size_px),
                        ("cascade.stage1_size_px", self.cascade.stage1_size_px)):
            if v < div or v % div:
                raise ConfigError(f"{name}={v} must be a multiple of {div} (2^(levels-1) of the U-Net)")
        if self.data.clip_frames < 2:
            raise ConfigError(f"data.clip_frames must be >= 2, got {self.data.clip_frames}")
        if not 0 <= self.sampler.overlap_frames < self.data.clip_frames:
            raise ConfigError("sampler.overlap_frames must be in [0, data.clip_frames)")

    def stage_size(self, stage: int) -> int:
        """Output size (px, square) of ``stage``: 0/1 of the cascade, or the single-stage size."""
        if not self.cascade.enabled or self.model == "dnn":
            return self.image_size_px
        return self.cascade.stage0_size_px if stage == 0 else self.cascade.stage1_size_px

    def with_output_size(self, size_px: int) -> TongueConfig:
        """This config producing ``size_px`` video (the paper's Table 2 sizes 64 / 96 / 112).

        Diffusion: ``size_px <= cascade.stage0_size_px`` is a single stage at that size, larger
        sizes are the cascade stage0 -> ``size_px``; the DNN predicts ``size_px`` directly.
        """
        from dataclasses import replace

        if self.model == "diffusion" and self.cascade.enabled and size_px > self.cascade.stage0_size_px:
            return replace(self, image_size_px=size_px, cascade=replace(self.cascade, stage1_size_px=size_px))
        return replace(self, image_size_px=size_px, cascade=replace(self.cascade, enabled=False))

    @property
    def num_stages(self) -> int:
        return 2 if self.cascade.enabled and self.model == "diffusion" else 1
