"""Speech2Face voice encoder (Oh et al. 2019, Table 1) and its cosine-distance loss.

Input: the compressed complex spectrogram of 6 s of speech, float32 (B,2,T,D) = (B,2,598,257)
(:func:`a2v.audio.compressed_stft`). Convs 4x4 (ReLU, BatchNorm), max-pool 2x1 over time after
some of them, two stride-2 convs, average over time, FC 4096, FC ``dim`` (the face-embedding size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2v.recipes.face.config import VoiceEncoderConfig


class VoiceEncoder(nn.Module):
    """Spectrogram (B,2,T,D) -> face-embedding prediction float32 (B, dim) (not normalised)."""

    def __init__(self, cfg: VoiceEncoderConfig, dim: int, n_freq: int = 257) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, f = 2, n_freq
        last = len(cfg.channels) - 1
        for i, c in enumerate(cfg.channels):
            if i in cfg.stride2:
                layers.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1))
                f = (f + 2 - 4) // 2 + 1
            else:
                # TF "SAME" for an even kernel: 1 before, 2 after (keeps T and D)
                layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c, 4)]
            if i != last:  # Speech2Face: the last conv goes straight to pooling
                layers += [nn.ReLU(inplace=True), nn.BatchNorm2d(c)]
            if i in cfg.pool_after:
                layers.append(nn.MaxPool2d((2, 1)))  # 2x1: time only
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.ReLU(), nn.Linear(c_in * f, cfg.fc_dim), nn.ReLU(), nn.Linear(cfg.fc_dim, dim))
        self.dim, self.fc_in = dim, c_in * f

    def forward(self, spec: Tensor) -> Tensor:
        h = self.convs(spec)  # (B,2,T,D)->(B,C,T',D')
        h = h.mean(dim=2)  # AVGPOOL inf x 1 over time: (B,C,T',D')->(B,C,D')
        return self.fc(h.flatten(1))  # (B,C*D')->(B,dim)


def cosine_distance_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean ``1 - cos(pred, target)`` over the batch; pred, target (B,D). Range [0, 2]."""
    return (1 - F.cosine_similarity(pred.float(), target.float(), dim=-1)).mean()


def lr_lambda(decay: float, every_steps: int):  # noqa: ANN201 - a schedule function
    """LR factor ``decay ** (step // every_steps)`` (paper: x0.95 every 10k steps)."""
    return lambda step: decay ** (step // every_steps)


def count_parameters(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def n_freq_bins(n_fft: int) -> int:
    return n_fft // 2 + 1


def embed_speech(encoder: VoiceEncoder, spec: Tensor) -> Tensor:
    """L2-normalised embedding (B,dim) of spectrograms (B,2,T,D), in eval mode without grad."""
    with torch.no_grad():
        return F.normalize(encoder(spec).float(), dim=-1)
