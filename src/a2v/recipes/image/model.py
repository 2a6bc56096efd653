"""Audio encoder of the ``image`` recipe and its contrastive losses.

WavBriVL (Fang et al. 2023, sec. 3.1): WavLM hidden states -> learned weighted sum of all layers
-> 4 Transformer encoder layers -> mean pool over valid frames -> 2-layer MLP (ReLU) -> the image
tower's embedding size. The pretrained WavLM is a :class:`a2v.encoders.SpeechEncoder`; the trainable
part (layer weights, Transformer, MLP) is :class:`AudioHead`, so a frozen WavLM runs once per batch
and feeds both the online head and its momentum copy.
"""

from __future__ import annotations

import copy
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

    wav: float32 in [-1,1] at 16 kHz; lengths in samples. ``speech`` is a SpeechEncoder (frozen or not).
    """

    def __init__(self, speech: nn.Module, head: AudioHead) -> None:
        super().__init__()
        self.speech, self.head = speech, head

    @property
    def device(self) -> torch.device:
        return self.head.layer_logits.device

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        states, mask = speech_hidden_states(self.speech, wav, lengths)  # (B,S)->(L+1,B,T,D),(B,T)
        return self.head(states, mask)  # (B,E)


def build_audio_encoder(cfg: AudioConfig, embed_dim: int, device: str | torch.device = "cpu") -> AudioEncoder:
    """Load the speech model ``cfg.encoder`` (MissingWeightsError when absent) and a fresh head of width ``embed_dim``."""
    from a2v.encoders import SpeechEncoder

    speech = SpeechEncoder.from_pretrained(cfg.encoder, layer="last", freeze=cfg.freeze_encoder, progress=False)
    head = AudioHead(speech.num_layers + 1, speech.dim, embed_dim, cfg)
    return AudioEncoder(speech, head).to(device)


class CrossModalContrast(nn.Module):
    """The training loss with its momentum state: BriVL's CXLoss (two queues) or Wav2CLIP's in-batch InfoNCE.

    CXLoss (Huo et al. 2021 "WenLan" sec. 3.2, as used by WavBriVL): with image embeddings v (the
    frozen tower is its own momentum encoder) and audio embeddings a = g(audio), a_m = g_m(audio)
    (momentum head, MoCo eq. 2, m = ``cfg.momentum``)::

        L = InfoNCE(q=a, k+=v, negatives=image queue) + InfoNCE(q=v, k+=a, negatives=audio queue of a_m)

    The image side has no trainable part, so in the second term the positive is the *online*
    audio embedding (gradient flows through it) while the negatives are past momentum keys;
    with a momentum positive that term would be a constant. Queues are filled after the loss
    (MoCo Alg. 1), so the current batch is never its own negative. ``kind="wav2clip"``:
    symmetric in-batch InfoNCE (Wu et al. 2022, sec. 3.2), no queues used.
    """

    def __init__(self, embed_dim: int, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_queue = FeatureQueue(cfg.queue_size, embed_dim)
        self.audio_queue = FeatureQueue(cfg.queue_size, embed_dim)

    def forward(self, audio: torch.Tensor, image: torch.Tensor, audio_key: torch.Tensor | None = None,
                gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """audio: (B,E) online audio embeddings; image: (B,E) tower embeddings; audio_key: (B,E) momentum ones.

        Returns {"loss", "loss_a2i", "loss_i2a"} scalars; with CXLoss the queues are updated (no grad).
        ``gather`` (B,E) -> (N*B,E) collects the keys of all N processes before they are enqueued
        (MoCo's concat_all_gather, e.g. ``StepContext.gather``); None = this process's keys only.
        """
        tau = self.cfg.temperature
        image = image.detach().to(audio.dtype)
        if self.cfg.kind == "wav2clip":
            loss = symmetric_info_nce(audio, image, tau)
            return {"loss": loss, "loss_a2i": loss.detach(), "loss_i2a": loss.detach()}
        if audio_key is None:
            raise ValueError("CXLoss needs the momentum audio embeddings (audio_key)")
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


__all__ = ["AudioEncoder", "AudioHead", "CrossModalContrast", "build_audio_encoder", "momentum_copy",
           "momentum_update_", "speech_hidden_states"]
