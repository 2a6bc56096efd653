"""Lip-sync stage 1 networks: MFCC (100 Hz) -> mouth PCA coefficients (25 fps).

Zheng et al. 2020, "A Neural Lip-Sync Framework for Synthesizing Photorealistic Virtual News
Anchors" (arXiv:2002.08700), §3.1: a TCN generator maps 13-D MFCC at 100 Hz to 10-D mouth PCA
at 25 fps; a TCN discriminator judges (audio, mouth) pairs. Training windows hold 200 audio
frames <-> 50 video frames. §4 compares with a time-delayed LSTM, a BiLSTM and the TCN without
GAN, all with the same input/output, built here by :func:`build_generator` from ``cfg.arch``.

Every generator maps ``mfcc: float32 (B,T,13)`` (T audio frames, 100 Hz, T divisible by 4) to
``mouth: float32 (B,F,10)`` with ``F = T // 4`` (25 fps). Video frame f is aligned with audio
frames ``4f .. 4f+3`` (the 40 ms it covers); callers pad MFCC to ``4*F`` frames, F being the
video frame count ``round(duration_s * 25)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from a2v.errors import ConfigError, InputError
from a2v.nn.tcn import TCN

__all__ = [
    "AUDIO_FRAMES_PER_VIDEO_FRAME",
    "MouthModelConfig",
    "MouthGenerator",
    "MouthDiscriminator",
    "TimeDelayedLSTM",
    "BiLSTM",
    "build_generator",
    "build_discriminator",
    "check_mfcc_length",
]

AUDIO_FRAMES_PER_VIDEO_FRAME = 4  # 100 Hz MFCC / 25 fps video

Arch = Literal["tcn_gan", "tcn", "lstm", "bilstm"]


@dataclass(frozen=True)
class MouthModelConfig:
    """Stage 1 model settings. Defaults are the paper's where it states them (§3.1, §4.1).

    The loss weights and the GAN loss type are not given numerically in the paper; the defaults
    (regression 1, inter-frame 1, adversarial 0.01, LSGAN) are ours.
    ``time_delay_frames``: the time-delayed LSTM baseline follows Suwajanakorn et al. 2017,
    "Synthesizing Obama", §3.1, whose LSTM output is delayed by d = 20 steps of 10 ms (200 ms),
    so a causal LSTM hears 200 ms of future audio before it commits to a mouth shape.
    """

    arch: Arch = "tcn_gan"
    mfcc_dim: int = 13
    out_dim: int = 10  # mouth PCA coefficients
    audio_rate_hz: float = 100.0
    video_fps: float = 25.0
    window_audio_frames: int = 200  # 2 s training window at 100 Hz
    window_video_frames: int = 50  # the same 2 s at 25 fps
    # TCN generator
    channels: int = 256
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    convs_per_block: int = 2  # dilated convolutions per residual block (Bai et al. 2018)
    fc_hidden: int = 256
    dropout: float = 0.0
    weight_norm: bool = False
    # TCN discriminator over (audio, mouth)
    disc_channels: int = 256
    disc_dilations: tuple[int, ...] = (1, 2, 4, 8)
    disc_logits: Literal["window", "frame"] = "window"  # one logit per window or per video frame
    gan_loss: Literal["lsgan", "bce"] = "lsgan"
    # LSTM baselines
    lstm_hidden: int = 256
    lstm_layers: int = 1
    time_delay_frames: int = 20  # audio frames (10 ms each) of look-ahead for arch="lstm"
    # loss weights (mouth_loss.total_generator_loss)
    reg_weight: float = 1.0
    inter_weight: float = 1.0
    adv_weight: float = 0.01

    def __post_init__(self) -> None:
        ratio = self.audio_rate_hz / self.video_fps
        if ratio != AUDIO_FRAMES_PER_VIDEO_FRAME:
            raise ConfigError(
                f"lipsync model: audio_rate_hz / video_fps must be {AUDIO_FRAMES_PER_VIDEO_FRAME} "
                f"(100 Hz MFCC, 25 fps video), got {self.audio_rate_hz} / {self.video_fps}"
            )
        if self.window_audio_frames != AUDIO_FRAMES_PER_VIDEO_FRAME * self.window_video_frames:
            raise ConfigError(
                f"lipsync model: window_audio_frames ({self.window_audio_frames}) must be "
                f"4 x window_video_frames ({self.window_video_frames})"
            )
        if self.time_delay_frames < 0:
            raise ConfigError(f"lipsync model: time_delay_frames must be >= 0, got {self.time_delay_frames}")
        if not self.dilations or not self.disc_dilations:
            raise ConfigError("lipsync model: dilations and disc_dilations need at least one value")

    @property
    def uses_gan(self) -> bool:
        return self.arch == "tcn_gan"


def check_mfcc_length(n_audio_frames: int) -> int:
    """Video frame count F for T audio frames; InputError unless T is a positive multiple of 4."""
    if n_audio_frames <= 0 or n_audio_frames % AUDIO_FRAMES_PER_VIDEO_FRAME:
        raise InputError(
            f"MFCC has {n_audio_frames} frames; the lip-sync model needs a positive multiple of 4 "
            "(100 Hz audio per 25 fps frame): pad the MFCC to 4 x the video frame count"
        )
    return n_audio_frames // AUDIO_FRAMES_PER_VIDEO_FRAME


def _check_input(mfcc: torch.Tensor, mfcc_dim: int) -> int:
    if mfcc.ndim != 3 or mfcc.shape[-1] != mfcc_dim:
        raise InputError(f"MFCC batch must be (B,T,{mfcc_dim}), got {tuple(mfcc.shape)}")
    return check_mfcc_length(mfcc.shape[1])


def _downsampler(in_dim: int, channels: int) -> nn.Sequential:
    """Three 1-D convolutions, 100 Hz -> 25 fps: (B,in_dim,T) -> (B,C,T/4) for T % 4 == 0.

    Kernel 4, stride 2, padding 1 halves an even length exactly; output j covers inputs
    2j-1 .. 2j+2, centred on the pair (2j, 2j+1), so frame f stays centred on audio 4f .. 4f+3.
    """
    return nn.Sequential(
        nn.Conv1d(in_dim, channels, 3, padding=1),  # (B,D,T)->(B,C,T)
        nn.LeakyReLU(0.2),
        nn.Conv1d(channels, channels, 4, stride=2, padding=1),  # (B,C,T)->(B,C,T/2)
        nn.LeakyReLU(0.2),
        nn.Conv1d(channels, channels, 4, stride=2, padding=1),  # (B,C,T/2)->(B,C,T/4)
        nn.LeakyReLU(0.2),
    )


def _conv_span(layers: Sequence[tuple[int, int, int, int]], first: int, last: int) -> tuple[int, int]:
    """Input index range feeding outputs ``first..last`` through convs given as (kernel, stride, pad_left, dilation), input->output order."""
    for k, s, pad, d in reversed(layers):
        first, last = first * s - pad, last * s - pad + (k - 1) * d
    return first, last


class MouthGenerator(nn.Module):
    """TCN generator (paper §3.1): mfcc float (B,T,13), 100 Hz -> mouth PCA float (B,F,10), 25 fps.

    Layers ("four 1-D convolutions, two fully connected layers and a TCN block wrapped in 1-D
    convolutions that downsample 100 Hz -> 25 fps"), C = ``channels``:

        conv1  Conv1d(13->C, k3, s1) + LeakyReLU      (B,13,T)   -> (B,C,T)
        conv2  Conv1d(C->C,  k4, s2) + LeakyReLU      (B,C,T)    -> (B,C,T/2)
        conv3  Conv1d(C->C,  k4, s2) + LeakyReLU      (B,C,T/2)  -> (B,C,F)
        tcn    TCN(C, k3, dilations 1,2,4,8, residual, non-causal)   (B,C,F)
        conv4  Conv1d(C->C,  k3, s1) + LeakyReLU      (B,C,F)    -> (B,C,F)
        fc1    Linear(C->fc_hidden) + LeakyReLU       (B,F,C)    -> (B,F,H)
        fc2    Linear(fc_hidden->10)                  (B,F,H)    -> (B,F,10)
    """

    def __init__(self, cfg: MouthModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.down = _downsampler(cfg.mfcc_dim, cfg.channels)
        self.tcn = TCN(
            cfg.channels,
            cfg.channels,
            cfg.kernel_size,
            cfg.dilations,
            causal=False,
            convs_per_block=cfg.convs_per_block,
            dropout=cfg.dropout,
            weight_norm=cfg.weight_norm,
        )
        self.conv4 = nn.Sequential(nn.Conv1d(cfg.channels, cfg.channels, 3, padding=1), nn.LeakyReLU(0.2))
        self.fc = nn.Sequential(
            nn.Linear(cfg.channels, cfg.fc_hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.fc_hidden, cfg.out_dim)
        )

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        """mfcc: float (B,T,13), 100 Hz, T % 4 == 0 -> mouth PCA float (B,F,10), F = T/4."""
        _check_input(mfcc, self.cfg.mfcc_dim)
        h = self.down(mfcc.transpose(1, 2))  # (B,T,13)->(B,13,T)->(B,C,F)
        h = self.conv4(self.tcn(h))  # (B,C,F)
        return self.fc(h.transpose(1, 2))  # (B,C,F)->(B,F,C)->(B,F,10)

    def audio_span(self, frame: int) -> tuple[int, int]:
        """Audio frames (first, last), possibly outside the input, that video frame ``frame`` depends on."""
        layers = [(3, 1, 1, 1), (4, 2, 1, 1), (4, 2, 1, 1)]
        for d in self.tcn.dilations:
            left = (self.cfg.kernel_size - 1) * d // 2
            layers += [(self.cfg.kernel_size, 1, left, d)] * self.cfg.convs_per_block
        layers.append((3, 1, 1, 1))
        return _conv_span(layers, frame, frame)

    @property
    def context_video_frames(self) -> tuple[int, int]:
        """(past, future) video frames of audio context beyond frame f's own 4 audio frames."""
        first, last = self.audio_span(0)
        n = AUDIO_FRAMES_PER_VIDEO_FRAME
        return -(first // n), -(-(last - (n - 1)) // n)

    @property
    def receptive_field_audio_frames(self) -> int:
        first, last = self.audio_span(0)
        return last - first + 1


class MouthDiscriminator(nn.Module):
    """TCN discriminator over an (audio, mouth) pair (paper §3.1) -> real/fake logits.

    mfcc float (B,T,13) at 100 Hz and mouth float (B,F,10) at 25 fps, T = 4F ->
    logits float (B,1) (``disc_logits="window"``) or (B,F) (``"frame"``); raw scores for
    LSGAN or BCE-with-logits (mouth_loss).

        audio  3 convs as in the generator (100 Hz -> 25 fps)   (B,13,T) -> (B,C,F)
        cat    [audio, mouth]                                    -> (B,C+10,F)
        tcn    TCN(C+10 -> C, dilations disc_dilations)          -> (B,C,F)
        head   Conv1d(C->1, k1)                                  -> (B,1,F) -> (B,F) or mean -> (B,1)
    """

    def __init__(self, cfg: MouthModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.disc_channels
        self.audio = _downsampler(cfg.mfcc_dim, c)
        self.tcn = TCN(
            c + cfg.out_dim, c, cfg.kernel_size, cfg.disc_dilations, convs_per_block=cfg.convs_per_block
        )
        self.head = nn.Conv1d(c, 1, 1)

    def forward(self, mfcc: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        n_frames = _check_input(mfcc, self.cfg.mfcc_dim)
        if mouth.ndim != 3 or mouth.shape[1] != n_frames or mouth.shape[2] != self.cfg.out_dim:
            raise InputError(
                f"mouth batch must be (B,{n_frames},{self.cfg.out_dim}) for MFCC {tuple(mfcc.shape)}, "
                f"got {tuple(mouth.shape)}"
            )
        a = self.audio(mfcc.transpose(1, 2))  # (B,T,13)->(B,C,F)
        h = torch.cat([a, mouth.transpose(1, 2)], dim=1)  # (B,C,F),(B,10,F)->(B,C+10,F)
        logits = self.head(self.tcn(h)).squeeze(1)  # (B,C+10,F)->(B,1,F)->(B,F)
        if self.cfg.disc_logits == "window":
            return logits.mean(dim=1, keepdim=True)  # (B,F)->(B,1)
        return logits


def _pool_to_video_rate(h: torch.Tensor) -> torch.Tensor:
    """Average each group of 4 audio frames: (B,T,D) -> (B,T/4,D), frame f = mean of 4f..4f+3."""
    b, t, d = h.shape
    n = AUDIO_FRAMES_PER_VIDEO_FRAME
    return h.reshape(b, t // n, n, d).mean(2)  # (B,T,D)->(B,F,4,D)->(B,F,D)


class TimeDelayedLSTM(nn.Module):
    """Baseline (paper §4, after Suwajanakorn et al. 2017 §3.1): causal LSTM, output delayed by d.

    mfcc float (B,T,13), 100 Hz -> mouth float (B,F,10), 25 fps. The input is zero-padded by
    d = ``time_delay_frames`` at the end and the first d outputs are dropped, so the output for
    audio frame t has heard frames <= t+d (d x 10 ms of look-ahead). Audio-rate outputs are
    averaged over each frame's 4 audio frames (video rate), then a linear layer gives the PCA.

        lstm   LSTM(13->H, causal) on padded input   (B,T+d,13) -> (B,T+d,H)
        delay  drop first d                          -> (B,T,H)
        pool   mean of 4 audio frames                -> (B,F,H)
        fc     Linear(H->10)                         -> (B,F,10)
    """

    def __init__(self, cfg: MouthModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.delay = cfg.time_delay_frames
        self.lstm = nn.LSTM(cfg.mfcc_dim, cfg.lstm_hidden, cfg.lstm_layers, batch_first=True)
        self.fc = nn.Linear(cfg.lstm_hidden, cfg.out_dim)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        _check_input(mfcc, self.cfg.mfcc_dim)
        x = nn.functional.pad(mfcc, (0, 0, 0, self.delay))  # (B,T,13)->(B,T+d,13)
        h, _ = self.lstm(x)  # (B,T+d,13)->(B,T+d,H)
        h = h[:, self.delay :]  # (B,T+d,H)->(B,T,H)
        return self.fc(_pool_to_video_rate(h))  # (B,T,H)->(B,F,H)->(B,F,10)


class BiLSTM(nn.Module):
    """Baseline (paper §4): bidirectional LSTM, mfcc float (B,T,13) 100 Hz -> (B,F,10) 25 fps.

    lstm   BiLSTM(13->H per direction)   (B,T,13) -> (B,T,2H)
    pool   mean of 4 audio frames        -> (B,F,2H)
    fc     Linear(2H->10)                -> (B,F,10)
    """

    def __init__(self, cfg: MouthModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            cfg.mfcc_dim, cfg.lstm_hidden, cfg.lstm_layers, batch_first=True, bidirectional=True
        )
        self.fc = nn.Linear(2 * cfg.lstm_hidden, cfg.out_dim)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        _check_input(mfcc, self.cfg.mfcc_dim)
        h, _ = self.lstm(mfcc)  # (B,T,13)->(B,T,2H)
        return self.fc(_pool_to_video_rate(h))  # (B,T,2H)->(B,F,2H)->(B,F,10)


def build_generator(cfg: MouthModelConfig) -> nn.Module:
    """The generator for ``cfg.arch``: (B,T,13) at 100 Hz -> (B,T/4,10) at 25 fps."""
    if cfg.arch in ("tcn_gan", "tcn"):
        return MouthGenerator(cfg)
    if cfg.arch == "lstm":
        return TimeDelayedLSTM(cfg)
    if cfg.arch == "bilstm":
        return BiLSTM(cfg)
    raise ConfigError(f"lipsync model: unknown arch '{cfg.arch}' (choose tcn_gan, tcn, lstm, bilstm)")


def build_discriminator(cfg: MouthModelConfig) -> MouthDiscriminator | None:
    """The (audio, mouth) discriminator when ``cfg.arch == "tcn_gan"``, else None."""
    return MouthDiscriminator(cfg) if cfg.uses_gan else None
