"""Wav2CLIP's audio encoder (Wu et al. 2022, "Wav2CLIP: Learning Robust Audio Representations from CLIP",
arXiv:2110.11499, sec. 3.1) and a loader for its released checkpoint (``ResNet_CX.ckpt``).

16 kHz waveform -> power spectrogram (n_fft 512, hop 353, Hann, centred, as torchaudio's Spectrogram in the
wav2clip package) -> log(x + 1e-7) -> standardised -> ResNet-18 with a 1-channel stem (torchvision's) ->
global average pool -> 512-d; with ``transform`` the audio projection g (Linear-ReLU-Dropout-Linear) maps it
into CLIP's image space (the package's ``get_model`` uses it). Parameter names follow the package
(``encoder.*`` = its ``audio_encoder.*``, ``transform.*`` = its ``audio_transform.*``).

Ours: the standardisation uses each clip's own mean/std (the package uses the whole batch's, which is the
same for one clip, as its ``embed_audio`` of one file), and zero-padded clips are embedded at their length.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from a2v.errors import InputError
from a2v.recipes.image.model import Projection

N_FFT, HOP = 512, 353  # wav2clip/model/resnet.py: torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)
EMBED_DIM = 512


def log_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """float32 (B,S) at 16 kHz -> standardised log power spectrogram (B,1,257,T), T = 1 + S // 353.

    torch.stft with torchaudio Spectrogram's defaults (power 2, periodic Hann of 512, centred, reflect pad);
    written with torch alone because torchaudio is not a dependency.
    """
    window = torch.hann_window(N_FFT, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    x = torch.log(spec.abs().pow(2) + 1e-7)[:, None]  # (B,S)->(B,257,T)->(B,1,257,T)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B,1,1,1)
    std = x.std(dim=(1, 2, 3), keepdim=True)  # (B,1,1,1), unbiased as torch.std
    return (x - mean) / (std + 1e-9)  # (B,1,257,T)


class SpectrogramResNet(nn.Module):
    """ResNet-18 (torchvision) over a 1-channel log spectrogram: (B,S) -> (B,512). ``fc`` is unused (as upstream)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net(log_spectrogram(wav))  # (B,S)->(B,1,257,T)->(B,512)


class Wav2CLIPAudioEncoder(nn.Module):
    """Sound -> embedding: ``forward(wav (B,S), lengths (B,) or None) -> (B,512)``; wav float32 in [-1,1], 16 kHz.

    ``transform``: the audio projection g into CLIP's space (Projection of 512), or None (the bare encoder,
    e.g. while training with CXLoss, whose loss holds g). ``encoder``: an existing SpectrogramResNet to share.
    """

    def __init__(self, transform: nn.Module | None = None, encoder: SpectrogramResNet | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else SpectrogramResNet()
        self.transform = transform
        self.out_dim = EMBED_DIM

    @property
    def device(self) -> torch.device:
        return self.encoder.net.conv1.weight.device

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if wav.ndim != 2:
            raise InputError(f"Wav2CLIP expects (B,S) waveforms, got {tuple(wav.shape)}")
        S = wav.shape[1]
        if lengths is None or bool((lengths >= S).all()):
            a = self.encoder(wav)  # (B,S)->(B,512)
        else:  # each clip at its own length (zero padding would change the spectrogram statistics)
            a = torch.cat([self.encoder(wav[i:i + 1, :max(int(n), N_FFT)]) for i, n in enumerate(lengths.tolist())])
        return a if self.transform is None else self.transform(a)  # (B,512)


def _wav2clip_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Released keys -> ours: ``audio_encoder.X`` -> ``net.X`` (minus ``fc``/``spectrogram``), ``audio_transform.X``."""
    enc = {"net." + k[len("audio_encoder."):]: v for k, v in sd.items() if k.startswith("audio_encoder.")
           and not k.startswith(("audio_encoder.fc.", "audio_encoder.fc_.", "audio_encoder.spectrogram."))}
    tr = {k[len("audio_transform."):]: v for k, v in sd.items() if k.startswith("audio_transform.")}
    return enc, tr


def load_wav2clip(path: str | os.PathLike) -> Wav2CLIPAudioEncoder:
    """Wav2CLIP's released audio encoder with its projection (eval mode, CPU) from ``ResNet_CX.ckpt``
    (when ``torch.load(weights_only=True)`` reads it) or its safetensors conversion (``a2v image
    convert-wav2clip``). Keys must match exactly (strict)."""
    from a2v.recipes.image.ckpt import load_strict, read_state_dict

    sd = read_state_dict(path, "Wav2CLIP checkpoint", "a2v image convert-wav2clip")
    enc_sd, tr_sd = _wav2clip_keys(sd)
    if not enc_sd:
        raise InputError(f"{path} has no 'audio_encoder.*' tensors: not a Wav2CLIP checkpoint")
    if not tr_sd:
        raise InputError(f"{path} has no 'audio_transform.*' tensors (the audio projection of a CX-loss "
                         "Wav2CLIP model)")
    model = Wav2CLIPAudioEncoder(Projection(EMBED_DIM))
    for name, part, state in (("audio_encoder", model.encoder, enc_sd), ("audio_transform", model.transform, tr_sd)):
        load_strict(part, state, f"{path}: {name} does not fit Wav2CLIP's ResNet-18")
    return model.eval()


__all__ = ["Wav2CLIPAudioEncoder", "load_wav2clip", "log_spectrogram"]
