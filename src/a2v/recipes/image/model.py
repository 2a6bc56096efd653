"""Audio encoder of the ``image`` recipe and its contrastive losses.

WavBriVL (Fang et al. 2023, sec. 3.1): WavLM hidden states -> learned weighted sum of all layers
-> 4 Transformer encoder layers -> mean pool over valid frames -> 2-layer MLP (ReLU) -> the image
tower's embedding size. The pretrained WavLM is a :class:`a2v.encoders.SpeechEncoder`; the trainable
part (layer weights, Transformer, MLP) is :class:`AudioHead`, so a frozen WavLM runs once per batch
and feeds both the online head and its momentum copy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from a2v.errors import ConfigError, InputError
from a2v.nn.moco import FeatureQueue, info_nce_with_queue, momentum_update_, symmetric_info_nce
from a2v.recipes.image.config import AudioConfig, LossConfig


def speech_hidden_states(speech: nn.Module, wav: torch.Tensor, lengths: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """All hidden states of a SpeechEncoder's backbone: see :meth:`a2v.encoders.SpeechEncoder.hidden_states`."""
    return speech.hidden_states(wav, lengths)  # (B,S)->(L+1,B,T,D), (B,T)


class AudioHead(nn.Module):
    """Weighted layer sum -> Transformer -> masked mean pool -> MLP: (L+1,B,T,D) -> (B,E).

    ``num_states`` = L+1 hidden states of the speech model, ``in_dim`` = D its width,
    ``out_dim`` = E the image tower's embedding size. Output not normalised.
    """

    def __init__(self, num_states: int, in_dim: int, out_dim: int, cfg: AudioConfig) -> None:
        super().__init__()
        if in_dim % cfg.num_heads:
            raise ConfigError(f"audio.num_heads={cfg.num_heads} must divide the speech model width {in_dim}")
        self.layer_logits = nn.Parameter(torch.zeros(num_states))  # softmax -> weights (SUPERB, Yang et al. 2021)
        layer = nn.TransformerEncoderLayer(in_dim, cfg.num_heads, cfg.ff_dim, cfg.dropout, batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.mlp = nn.Sequential(nn.Linear(in_dim, cfg.mlp_hidden_dim), nn.ReLU(), nn.Linear(cfg.mlp_hidden_dim, out_dim))
        self.num_states, self.in_dim, self.out_dim = num_states, in_dim, out_dim

    def forward(self, states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """states: float32 (L+1,B,T,D); frame_mask: bool (B,T) True = valid. Returns float32 (B,E)."""
        if states.shape[0] != self.num_states or states.shape[-1] != self.in_dim:
            raise InputError(f"audio head expects ({self.num_states},B,T,{self.in_dim}) states, "
                             f"got {tuple(states.shape)}")
        w = torch.softmax(self.layer_logits, 0).to(states.dtype)  # (L+1,)
        x = torch.einsum("l,lbtd->btd", w, states)  # (L+1,B,T,D)->(B,T,D)
        x = self.transformer(x, src_key_padding_mask=~frame_mask)  # (B,T,D)
        m = frame_mask[..., None].to(x.dtype)  # (B,T,1)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B,T,D)->(B,D)
        return self.mlp(pooled)  # (B,D)->(B,E)


class AudioEncoder(nn.Module):
    """Sound -> embedding in the image tower's space: ``forward(wav (B,S), lengths (B,)) -> (B,E)``.

    wav: float32 in [-1,1] at 16 kHz; lengths in samples. ``speech`` is a SpeechEncoder (frozen or not);
    ``proj``: CXLoss's audio projection g (None with the other losses).
    """

    def __init__(self, speech: nn.Module, head: AudioHead, proj: nn.Module | None = None) -> None:
        super().__init__()
        self.speech, self.head, self.proj = speech, head, proj

    @property
    def device(self) -> torch.device:
        return self.head.layer_logits.device

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        states, mask = speech_hidden_states(self.speech, wav, lengths)  # (B,S)->(L+1,B,T,D),(B,T)
        a = self.head(states, mask)  # (B,E)
        return a if self.proj is None else self.proj(a)  # CXLoss: g(A) is the tower-space embedding, (B,E)


def build_audio_encoder(cfg: AudioConfig, embed_dim: int, device: str | torch.device = "cpu") -> nn.Module:
    """``audio.kind="wavlm"``: load the speech model ``cfg.encoder`` (MissingWeightsError when absent) and a fresh
    head of width ``embed_dim``. ``"wav2clip"``: a fresh Wav2CLIP ResNet-18 (512-d; ConfigError for other widths)."""
    from a2v.encoders import SpeechEncoder

    if cfg.kind == "wav2clip":
        from a2v.recipes.image.wav2clip import EMBED_DIM, Wav2CLIPAudioEncoder

        if embed_dim != EMBED_DIM:
            raise ConfigError(f"audio.kind=wav2clip gives {EMBED_DIM}-d embeddings but the image tower's are "
                              f"{embed_dim}-d: use a 512-d tower (CLIP ViT-B/32) or audio.kind=wavlm")
        return Wav2CLIPAudioEncoder().to(device)

    speech = SpeechEncoder.from_pretrained(cfg.encoder, layer="last", freeze=cfg.freeze_encoder, progress=False)
    head = AudioHead(speech.num_layers + 1, speech.dim, embed_dim, cfg)
    return AudioEncoder(speech, head).to(device)


class Projection(nn.Module):
    """Wav2CLIP's MLPLayers with units (E,E,E): Linear-ReLU-Dropout-Linear, (B,E) -> (B,E).

    Parameter names follow the wav2clip package (``sequential.0``, ``sequential.3``), so its released
    ``audio_transform.*`` / ``image_transform.*`` tensors load as they are.
    """

    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.sequential = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)  # (B,E)->(B,E)


class ClipLoss(nn.Module):
    """Symmetric in-batch InfoNCE with a learned temperature (CLIP, Radford et al. 2021 Fig. 3; Wav2CLIP's
    CLIPLoss1D): ``logit_scale`` = log(1/tau) starts at log(1/``temperature``). (B,E),(B,E) -> scalar."""

    def __init__(self, temperature: float, learn: bool = True) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learn)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return symmetric_info_nce(a, b, 1.0 / self.logit_scale.exp())  # tau = exp(-logit_scale)


class CrossModalContrast(nn.Module):
    """The training loss (and its state): the paper's CXLoss, BriVL's momentum contrast, or plain InfoNCE.

    ``kind="cxloss"`` (WavBriVL sec. 3.2, the form of Wav2CLIP, Wu et al. 2022 sec. 3.2, ``clip_loss_x``):
    with learned projections f (image side) and g (audio side), both Linear-ReLU-Dropout-Linear::

        L = CLIP(A, f(I)) + CLIP(g(A), I)

    CLIP = symmetric in-batch InfoNCE, each term with its own learned temperature (init ``temperature``).
    Wav2CLIP's code halves the sum; with Adam that scale hardly matters, and the paper's formula has none. g(A) lands in the frozen tower's space, so g is part of the audio
    encoder at inference (:attr:`audio_proj`); f is used in training only.

    ``kind="moco"`` (BriVL, Huo et al. 2021 sec. 3.2): image embeddings v (the frozen tower is its own
    momentum encoder), audio a = g(audio) and a_m from the momentum head (MoCo eq. 2)::

        L = InfoNCE(q=a, k+=v, negatives=image queue) + InfoNCE(q=v, k+=a, negatives=audio queue of a_m)

    The positive of the second term is the online audio embedding (with a momentum positive and a frozen
    query that term would be constant). Queues are filled after the loss (MoCo Alg. 1), so a batch is
    never its own negative. ``kind="infonce"``: symmetric in-batch InfoNCE, fixed ``temperature``.
    """

    def __init__(self, embed_dim: int, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "cxloss":
            self.image_proj = Projection(embed_dim, cfg.proj_dropout)  # f
            self.audio_proj = Projection(embed_dim, cfg.proj_dropout)  # g
            self.loss_a = ClipLoss(cfg.temperature, cfg.learn_temperature)  # CLIP(A, f(I))
            self.loss_i = ClipLoss(cfg.temperature, cfg.learn_temperature)  # CLIP(g(A), I)
        elif cfg.kind == "moco":
            self.image_queue = FeatureQueue(cfg.queue_size, embed_dim)
            self.audio_queue = FeatureQueue(cfg.queue_size, embed_dim)
        elif cfg.kind != "infonce":
            raise ConfigError(f"unknown loss.kind '{cfg.kind}' (cxloss, moco, infonce)")

    @property
    def trainable(self) -> bool:
        """True when the loss has learned parts (CXLoss: f, g, temperatures)."""
        return self.cfg.kind == "cxloss"

    def forward(self, audio: torch.Tensor, image: torch.Tensor, audio_key: torch.Tensor | None = None,
                gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """audio: (B,E) audio head outputs A; image: (B,E) tower embeddings I; audio_key: (B,E) momentum ones (moco).

        Returns {"loss", "loss_a2i", "loss_i2a"} scalars; with moco the queues are updated (no grad).
        ``gather`` (B,E) -> (N*B,E) collects the keys of all N processes before they are enqueued
        (MoCo's concat_all_gather, e.g. ``StepContext.gather``); None = this process's keys only.
        """
        tau = self.cfg.temperature
        image = image.detach().to(audio.dtype)
        if self.cfg.kind == "cxloss":
            a_fi = self.loss_a(audio, self.image_proj(image))  # CLIP(A, f(I))
            ga_i = self.loss_i(self.audio_proj(audio), image)  # CLIP(g(A), I)
            return {"loss": a_fi + ga_i, "loss_a2i": ga_i.detach(), "loss_i2a": a_fi.detach()}  # WavBriVL's CXLoss
        if self.cfg.kind == "infonce":
            loss = symmetric_info_nce(audio, image, tau)
            return {"loss": loss, "loss_a2i": loss.detach(), "loss_i2a": loss.detach()}
        if audio_key is None:
            raise ValueError("momentum contrast needs the momentum audio embeddings (audio_key)")
        a2i = info_nce_with_queue(audio, image, self.image_queue.valid(), tau)
        i2a = info_nce_with_queue(image, audio, self.audio_queue.valid(), tau)
        self.enqueue(image, audio_key, gather)
        return {"loss": a2i + i2a, "loss_a2i": a2i.detach(), "loss_i2a": i2a.detach()}

    @torch.no_grad()
    def enqueue(self, image: torch.Tensor, audio_key: torch.Tensor,
                gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Append the normalised image embeddings (B,E) and momentum audio keys (B,E) to their queues.

        With ``gather`` (see :meth:`forward`) the N*B keys of all processes go in, in rank order.
        """
        keys = torch.cat([image.float(), audio_key.detach().float()], 1)  # (B,E),(B,E)->(B,2E)
        if gather is not None:
            keys = gather(keys)  # (B,2E)->(N*B,2E), every process's batch in rank order
        image, audio_key = keys.chunk(2, 1)  # (N*B,2E)->(N*B,E),(N*B,E)
        self.image_queue.enqueue(torch.nn.functional.normalize(image, dim=-1))  # (N*B,E)
        self.audio_queue.enqueue(torch.nn.functional.normalize(audio_key, dim=-1))  # (N*B,E)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of ``module`` to be moved by :func:`a2v.nn.moco.momentum_update_`."""
    key = copy.deepcopy(module)
    key.requires_grad_(False)
    return key


__all__ = ["AudioEncoder", "AudioHead", "ClipLoss", "CrossModalContrast", "Projection", "build_audio_encoder", "momentum_copy",
           "momentum_update_", "speech_hidden_states"]
