"""Lip-sync recipe settings (Zheng et al. 2020, arXiv:2002.08700). Defaults = the paper's settings.

``configs/lipsync/paper.yaml`` writes them out, ``configs/lipsync/tiny.yaml`` shrinks them for a
CPU; ``--set model.channels=64`` overrides one value. The resolved config is saved with every run
and every exported pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from a2v.errors import ConfigError
from a2v.recipes.lipsync.fit_check import FitCheckConfig
from a2v.recipes.lipsync.mouth_model import MouthModelConfig
from a2v.recipes.lipsync.renderer import RendererConfig
from a2v.recipes.lipsync.template import TemplateConfig
from a2v.train import TrainConfig

__all__ = ["LipSyncDataConfig", "LipSyncEvalConfig", "LipSyncConfig", "Stage2Config", "ARCHS"]

ARCHS = ("lstm", "bilstm", "tcn", "tcn_gan")  # Table 1 row order


@dataclass(frozen=True)
class LipSyncDataConfig:
    """Stage 1 data: 13-D MFCC at 100 Hz <-> 10-D mouth PCA at 25 fps (paper §3.1, §4.1).

    ``speaker_key``: what counts as one speaker for the per-speaker normalisation:
    ``"item"`` each clip (GRID-style folders of one clip per person), ``"source_dir"`` the folder
    of the item's source file (``speaker/clip.mp4`` layouts), ``"all"`` one speaker for all.
    ``speaker_norm``: standardise each speaker's normalised mouth (per-coordinate mean, one
    scalar std) before the PCA fit, so the PCA models mouth motion rather than identity.
    ``video_detector``/``video_min_face_px``: face detection when the data folder holds videos
    rather than a prepared dataset (:func:`a2v.recipes.lipsync.data.load_items`).
    ``train_hop_video_frames``: stride between training window starts (1 = every offset; the
    loop shuffles them, giving random offsets). ``eval_hop_video_frames``: stride of the
    sequential evaluation windows. ``holdout_ids`` (item ids) or else ``holdout_fraction`` of
    the items (chosen by a hash of the id, stable across runs) are kept out of training.
    """

    mfcc_dim: int = 13
    audio_rate_hz: float = 100.0
    video_fps: float = 25.0
    window_audio_frames: int = 200  # 2 s at 100 Hz (paper §4.1)
    window_video_frames: int = 50  # the same 2 s at 25 fps
    pca_components: int = 10  # paper §3.1: 10-D mouth PCA
    speaker_key: Literal["item", "source_dir", "all"] = "item"
    speaker_norm: bool = True
    mfcc_norm: bool = True  # standardise MFCC per coefficient with training-set statistics (ours)
    train_hop_video_frames: int = 1
    eval_hop_video_frames: int = 50
    holdout_ids: tuple[str, ...] = ()
    holdout_fraction: float = 0.1
    min_std: float = 1e-4  # floor of a speaker's mouth std (normalised units) for still faces
    # reading videos directly (a folder of clips instead of a prepared dataset)
    video_detector: Literal["mtcnn", "dlib_hog", "dlib_cnn", "mediapipe"] = "dlib_hog"
    video_min_face_px: float = 64.0

    def __post_init__(self) -> None:
        if self.window_audio_frames != 4 * self.window_video_frames:
            raise ConfigError(
                f"data.window_audio_frames ({self.window_audio_frames}) must be 4 x "
                f"data.window_video_frames ({self.window_video_frames}): 100 Hz MFCC, 25 fps video"
            )
        if self.train_hop_video_frames < 1 or self.eval_hop_video_frames < 1:
            raise ConfigError("data.train_hop_video_frames and data.eval_hop_video_frames must be >= 1")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ConfigError(f"data.holdout_fraction must be in [0, 1), got {self.holdout_fraction}")


@dataclass(frozen=True)
class LipSyncEvalConfig:
    """Evaluation and long-audio inference (paper §4.3.4: 40 audio frames of window overlap).

    ``position_hop_video_frames``: stride of the windows behind the per-position error along
    the output window (paper Fig. 5); 1 = every offset of every held-out sequence.
    """

    overlap_audio_frames: int = 40
    batch_windows: int = 64
    position_hop_video_frames: int = 1

    def __post_init__(self) -> None:
        if self.position_hop_video_frames < 1 or self.batch_windows < 1:
            raise ConfigError("eval.position_hop_video_frames and eval.batch_windows must be >= 1")


@dataclass(frozen=True)
class Stage2Config:
    """Stage 2 settings: ``renderer`` (pix2pixHD), ``train`` (its loop: steps, batch, checkpoints),
    ``template`` (tracking, crops, facial maps, paste-back), ``max_pairs`` (training frames, 0 = all
    frames with a face), ``check`` (held-out split and usability thresholds of ``fit``).
    The paper gives no renderer schedule; 20k steps of batch 4 are ours."""

    renderer: RendererConfig = field(default_factory=RendererConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(max_steps=20000, batch_size=4, log_every=100, ckpt_every=2000,
                                            sample_every=0)
    )
    template: TemplateConfig = field(default_factory=TemplateConfig)
    max_pairs: int = 0
    check: FitCheckConfig = field(default_factory=FitCheckConfig)


@dataclass(frozen=True)
class LipSyncConfig:
    """The whole lip-sync config: stage 1 ``model`` (mouth_model), ``train`` (a2v.train), ``data``,
    ``eval``; stage 2 ``stage2`` (renderer, its training loop, template handling).

    ``gan_lr_d``: learning rate of the discriminator (the generator uses ``train.lr``). Every
    model (``model.arch`` is set per model by ``train_mouth``) trains with Adam on the same
    windows, loss weights and ``train`` settings.
    Training settings the paper does not state (learning rate, steps, betas) are ours.
    """

    model: MouthModelConfig = field(default_factory=MouthModelConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            max_steps=20000,
            batch_size=32,
            lr=1e-4,
            adam_betas=(0.5, 0.999),
            log_every=50,
            eval_every=1000,
            ckpt_every=2000,
            best_metric="",  # the exported model is the last step's; eval metrics are only logged
        )
    )
    data: LipSyncDataConfig = field(default_factory=LipSyncDataConfig)
    eval: LipSyncEvalConfig = field(default_factory=LipSyncEvalConfig)
    gan_lr_d: float = 1e-4
    stage2: Stage2Config = field(default_factory=Stage2Config)

    def __post_init__(self) -> None:
        m, d = self.model, self.data
        if (m.window_audio_frames, m.window_video_frames) != (d.window_audio_frames, d.window_video_frames):
            raise ConfigError(
                "model.window_audio_frames/window_video_frames must equal data.window_audio_frames/"
                f"window_video_frames, got {m.window_audio_frames}/{m.window_video_frames} vs "
                f"{d.window_audio_frames}/{d.window_video_frames}"
            )
        if m.out_dim != d.pca_components:
            raise ConfigError(f"model.out_dim ({m.out_dim}) must equal data.pca_components ({d.pca_components})")
        if m.mfcc_dim != d.mfcc_dim:
            raise ConfigError(f"model.mfcc_dim ({m.mfcc_dim}) must equal data.mfcc_dim ({d.mfcc_dim})")
