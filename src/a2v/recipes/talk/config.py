"""Settings of the talk recipe; the dataclass defaults are the paper's ("Natural audio-to-video
generation with representation learning": StyleGAN3 W+ inversion, a VAE on latent offsets and
Embed2Lat, a transformer from wav2vec2 features to VAE codes).

YAML (configs/talk/{paper,tiny}.yaml) gives values, ``--set section.key=value`` overrides.
The ``prepare:`` section is read by ``a2v prepare talk`` (a2v.data.prepare.PrepareConfig keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from a2v.errors import ConfigError
from a2v.gan.stylegan import DEFAULT_STYLEGAN_PICKLE, StyleGeneratorConfig
from a2v.train.config import TrainConfig


@dataclass(frozen=True)
class GeneratorSettings:
    """Which style-based generator to use.

    kind: "nvlabs" (an NVlabs StyleGAN2/3 network pickle at ``path``, needs NVlabs' code at
    ``code_dir`` and ``trust_pickle=true``) or "builtin" (a2v.gan.stylegan.SmallStyleGenerator;
    ``path`` = a folder saved by ``save_pretrained``, or "" for random weights built from ``builtin``,
    which is only useful in tests).
    """

    kind: Literal["nvlabs", "builtin"] = "nvlabs"
    path: str = DEFAULT_STYLEGAN_PICKLE
    code_dir: str = ""
    trust_pickle: bool = False
    builtin: StyleGeneratorConfig = field(default_factory=StyleGeneratorConfig)


@dataclass(frozen=True)
class InvertSettings:
    """W+ optimisation (paper sec. 3.1): loss ``mse_weight * MSE + lpips_weight * LPIPS``; the first frame of a
    clip gets ``first_steps`` Adam steps (lr ``first_lr`` -> ``first_lr_final`` half-way), every later frame
    ``later_steps`` steps at ``later_lr`` warm-started from the previous frame.

    later_init: "previous" = the paper's chain (each later frame from the previous frame's solution);
    "first" = ours, batched over frames too: every later frame starts from its clip's first-frame solution and
    all later frames are optimised together; it needs more ``later_steps`` than the chain for the same loss
    (docs/talk.md, benchmarks/talk_inversion.py). init: start of the first frame, "random" (paper: the mapping
    network's w of a random z, the same in every W+ row; z drawn from ``seed`` and the clip id, so reruns and
    ``--resume`` give the same start), "mean" (ours, an option: ``w_avg``) or "encoder" (a torch.export archive
    ``encoder_path`` mapping images (1,3,R,R) in [0,1] to W+ (1,num_ws,w_dim); ``trust_encoder=true`` since
    loading unpickles parts of it).
    """

    first_steps: int = 1000
    first_lr: float = 0.02
    first_lr_final: float = 0.01
    later_steps: int = 5
    later_lr: float = 0.01
    mse_weight: float = 1.0
    lpips_weight: float = 10.0
    lpips_net: Literal["alex", "vgg", "squeeze"] = "vgg"
    lpips_weights_path: str = ""  # torchvision backbone file; "" = <torch hub dir>/checkpoints/<file>
    max_batch: int = 64  # most images per generator pass (frames of all clips are batched together)
    frames_per_step: int = 1  # 1 = the paper's frame-by-frame chain (later_init=previous)
    later_init: Literal["previous", "first"] = "previous"
    init: Literal["random", "mean", "encoder"] = "random"
    seed: int = 0  # random first-frame start (init=random)
    encoder_path: str = ""
    trust_encoder: bool = False
    max_clips: int = 0  # 0 = every clip of the dataset

    def __post_init__(self) -> None:
        if self.first_steps < 1 or self.later_steps < 0 or self.max_batch < 1 or self.frames_per_step < 1:
            raise ConfigError("invert: first_steps, max_batch, frames_per_step must be >= 1 and later_steps >= 0")
        if self.later_init not in ("previous", "first") or self.init not in ("random", "mean", "encoder"):
            raise ConfigError(f"invert.later_init must be previous or first (got {self.later_init!r}) and "
                              f"invert.init random, mean or encoder (got {self.init!r})")
        if self.init == "encoder" and not self.encoder_path:
            raise ConfigError("invert.init=encoder needs invert.encoder_path (a torch.export .pt2 file)")


@dataclass(frozen=True)
class LatentSettings:
    """Targets (paper sec. 3.2): dw_f = w_f - w_0 on W+ rows ``layers`` (0-based), flattened to
    len(layers) * w_dim (3 x 512 = 1536), normalised by one global mean and std."""

    layers: tuple[int, ...] = (5, 6, 7)

    def __post_init__(self) -> None:
        if not self.layers or len(set(self.layers)) != len(self.layers) or min(self.layers) < 0:
            raise ConfigError(f"latents.layers must be distinct indices >= 0, got {self.layers}")


@dataclass(frozen=True)
class VAESettings:
    """VAE on normalised offsets (paper sec. 3.3): widths after the input, GELU, MSE + kl_weight * KL.

    epochs > 0 sets ``train.max_steps`` to ``epochs * ceil(N / batch_size)`` for N training frames.
    """

    hidden_dims: tuple[int, ...] = (768, 384, 192)
    latent_dim: int = 96
    kl_weight: float = 1.0
    epochs: int = 500
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=10000, lr=1e-3, log_every=10,
                                                                    ckpt_every=500))


@dataclass(frozen=True)
class Embed2LatSettings:
    """Embed2Lat (paper sec. 3.4): a transformer of wav2vec2's encoder structure over wav2vec2 features,
    average-pooled to the video frame rate, then linear to the VAE code; trained with MSE on VAE means.

    window_frames: 0 = whole clips (paper: each clip's features pooled to fps x T frames); W > 0 = ours, windows of
    W video frames (half-overlapping in training). Training, validation, ``a2v talk evaluate`` and generation all
    run Embed2Lat on the same unit (model.predict_clip_codes), so the validation MSE compares with the paper's.
    val_fraction: share of clips held out for the validation MSE (paper: 0.273).
    """

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    conv_pos_kernel: int = 128
    conv_pos_groups: int = 16
    dropout: float = 0.1
    window_frames: int = 0  # 0 = whole clips (paper)
    val_fraction: float = 0.1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=256, lr=1e-5, max_steps=20000,
                                                                    eval_every=1000, best_metric="val_mse"))

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.hidden_size % self.conv_pos_groups:
            raise ConfigError("embed2lat.hidden_size must be divisible by num_heads and conv_pos_groups")
        if self.window_frames < 0 or not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError("embed2lat.window_frames must be >= 0 (0 = whole clips) and val_fraction in [0, 1)")


@dataclass(frozen=True)
class AudioSettings:
    """Frozen speech encoder (50 Hz features): a hub id or a local folder (save_pretrained)."""

    encoder: str = "facebook/wav2vec2-base"
    layer: str = "last"
    sample_rate_hz: int = 16000


@dataclass(frozen=True)
class GenerateSettings:
    """Generation: ``motion_scale`` multiplies Embed2Lat's predicted VAE code mu before the VAE decoder (paper
    sec. 3.5: 500; 1 = the codes as learned). detect_face: find the face in the photo (MTCNN) and crop it like the data;
    False = the photo already is an aligned face crop. paste_back: put the generated face back into the photo."""

    motion_scale: float = 500.0  # times the predicted code mu, before decoding (paper)
    fps: float = 25.0
    detect_face: bool = True
    min_face_px: float = 80.0
    crop_size_px: int = 256
    margin_frac: float = 0.25
    paste_back: bool = False
    invert_steps: int = 1000  # W+ steps for the photo (first_lr -> first_lr_final half-way)
    batch_frames: int = 32  # frames per generator pass


@dataclass(frozen=True)
class TalkConfig:
    """Whole talk recipe config (resolved copy saved with every checkpoint and pipeline)."""

    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    invert: InvertSettings = field(default_factory=InvertSettings)
    latents: LatentSettings = field(default_factory=LatentSettings)
    vae: VAESettings = field(default_factory=VAESettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    embed2lat: Embed2LatSettings = field(default_factory=Embed2LatSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    prepare: dict[str, Any] = field(default_factory=dict)  # for `a2v prepare talk` (PrepareConfig keys)
    device: str = "auto"  # "auto" = cuda when present, else cpu

    def vae_dims(self, w_dim: int) -> tuple[int, ...]:
        """(input = len(layers) * w_dim, hidden..., latent) for a2v.nn.vae.MLPVAE."""
        return (len(self.latents.layers) * w_dim, *self.vae.hidden_dims, self.vae.latent_dim)


