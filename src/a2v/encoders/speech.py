"""Self-supervised speech encoder (wav2vec 2.0, WavLM, HuBERT) over transformers' AutoModel.

Frame count: the convolutional feature encoder of these models has 7 layers, kernels
(10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2), i.e. a receptive field of 400 samples (25 ms)
and a hop of 320 samples (20 ms) at 16 kHz, so S samples give exactly
``T = (S - 400) // 320 + 1`` frames (0 when S < 400) at 50 Hz (Baevski et al. 2020, sec. 2).
The layer stack is read from the model config, so other kernels/strides are handled too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2v.encoders._hub import hub_offline, missing_weights, model_fingerprint, resolve_pretrained
from a2v.errors import ConfigError, InputError, MissingWeightsError

SAMPLE_RATE_HZ = 16000
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def conv_geometry(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """(receptive field, hop) in samples of a stack of 1-D convolutions without padding."""
    field, hop = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        field += (k - 1) * hop
        hop *= s
    return field, hop


def num_frames(n_samples: int, receptive_field: int = 400, hop: int = 320) -> int:
    """Exact number of encoder frames for ``n_samples`` input samples: ``(S - 400) // 320 + 1``, or 0."""
    return 0 if n_samples < receptive_field else (n_samples - receptive_field) // hop + 1


def _check_weight_files(folder: Path, what: str) -> None:
    if not any(any(folder.glob(p)) for p in _WEIGHT_FILES):
        raise MissingWeightsError(
            f"{what} folder {folder} has config.json but no weight file (model.safetensors or pytorch_model.bin)"
        )


class SpeechEncoder(nn.Module):
    """Speech -> frame features from a pretrained SSL model.

    ``forward(wav (B,S) float32 in [-1,1] at 16 kHz, lengths (B,) samples) -> (B,T,D) float32
    at ``frame_rate_hz`` (50 Hz)`` with T = :func:`num_frames` (S). Frames past an item's
    length are zero. ``layer``: "last" (final hidden state), an int (0 = the projected CNN
    features entering the transformer, L = the last layer) or "weighted" (softmax-normalised
    learned scalar weights over all L+1 hidden states, SUPERB, Yang et al. 2021 sec. 3),
    the weights stay trainable when the backbone is frozen.
    Long inputs: a wave longer than ``chunk_s`` seconds (default 30; None = never) is encoded in
    windows of ``chunk_s`` seconds with ``overlap_s`` seconds of context on each side (frames of
    the context are dropped), so memory stays that of a 30 s input (self-attention is quadratic
    in T: a 10-minute file in one pass would need tens of GB).
    """

    frame_rate_hz: float = 50.0
    sample_rate_hz: int = SAMPLE_RATE_HZ

    def __init__(
        self,
        backbone: nn.Module,
        layer: str | int = "last",
        freeze: bool = True,
        do_normalize: bool = True,
        use_attention_mask: bool = False,
        model_id: str = "",
        chunk_s: float | None = 30.0,
        overlap_s: float = 1.0,
        progress: bool = True,
    ) -> None:
        super().__init__()
        cfg = backbone.config
        if not hasattr(cfg, "conv_kernel") or not hasattr(cfg, "conv_stride"):
            raise ConfigError(
                f"model {model_id or type(backbone).__name__} (model_type={getattr(cfg, 'model_type', '?')}) "
                "is not a wav2vec2/WavLM/HuBERT speech encoder"
            )
        self.backbone = backbone
        self.receptive_field, self.hop = conv_geometry(cfg.conv_kernel, cfg.conv_stride)
        self.frame_rate_hz = self.sample_rate_hz / self.hop
        self.num_layers = int(cfg.num_hidden_layers)
        self.dim = int(cfg.hidden_size)
        if isinstance(layer, str) and layer not in {"last", "weighted"}:
            raise ConfigError(f"speech encoder layer {layer!r} must be 'last', 'weighted' or an int")
        if isinstance(layer, int) and not -self.num_layers - 1 <= layer <= self.num_layers:
            raise ConfigError(f"speech encoder layer {layer} out of range 0..{self.num_layers}")
        self.layer = layer
        # SUPERB weighted sum: one scalar per hidden state, zero-init = uniform average.
        self.layer_weights = nn.Parameter(torch.zeros(self.num_layers + 1)) if layer == "weighted" else None
        self.frozen = freeze
        self.do_normalize = do_normalize
        self.use_attention_mask = use_attention_mask
        self.model_id = model_id
        self.chunk_s = chunk_s
        self.overlap_s = overlap_s
        self.progress = progress
        self.cache_id = model_id
        if freeze:
            backbone.requires_grad_(False)
            backbone.eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        layer: str | int = "last",
        freeze: bool = True,
        device: str | torch.device | None = None,
        allow_download: bool | None = None,
        set_key: str = "audio.encoder",
        **kwargs,
    ) -> SpeechEncoder:
        """Load a wav2vec2/WavLM/HuBERT model from a folder or the Hugging Face cache.

        ``name_or_path``: a hub id ("facebook/wav2vec2-base", "microsoft/wavlm-base-plus")
        or a folder written by ``save_pretrained``. Input normalisation and the attention
        mask follow the folder's preprocessor_config.json (defaults when absent: normalise;
        attention mask only for ``feat_extract_norm="layer"`` models). A download is tried only
        as described in :func:`a2v.encoders._hub.resolve_pretrained`; otherwise
        MissingWeightsError, whose hint names ``set_key`` (the caller's config key for the
        folder). ``kwargs`` go to the constructor (chunk_s, overlap_s, progress).
        """
        from transformers import AutoFeatureExtractor, AutoModel

        what = "speech encoder"
        src = resolve_pretrained(name_or_path, what, set_key, allow_download)
        local = Path(src).is_dir()
        if local:
            _check_weight_files(Path(src), what)
        try:
            backbone = AutoModel.from_pretrained(src, local_files_only=local or hub_offline())
        except OSError as e:
            raise missing_weights(what, str(name_or_path), set_key) from e
        cfg = backbone.config
        try:
            fe = AutoFeatureExtractor.from_pretrained(src, local_files_only=local or hub_offline())
            do_normalize = bool(getattr(fe, "do_normalize", True))
            use_mask = bool(getattr(fe, "return_attention_mask", False))
            sr = int(getattr(fe, "sampling_rate", SAMPLE_RATE_HZ))
        except (OSError, ValueError):  # no preprocessor_config.json: the wav2vec2 defaults
            do_normalize = True
            use_mask = getattr(cfg, "feat_extract_norm", "group") == "layer"
            sr = SAMPLE_RATE_HZ
        if sr != SAMPLE_RATE_HZ:
            raise ConfigError(f"speech encoder {name_or_path} expects {sr} Hz audio; only 16000 Hz models are supported")
        enc = cls(backbone, layer, freeze, do_normalize, use_mask, model_id=str(name_or_path), **kwargs)
        enc.cache_id = f"{name_or_path}@{model_fingerprint(src)}" if local else str(name_or_path)
        return enc.to(device) if device is not None else enc

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def train(self, mode: bool = True) -> SpeechEncoder:
        """Set training mode; a frozen backbone stays in eval mode (no dropout, fixed statistics)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def num_frames(self, n_samples: int) -> int:
        """Frames for ``n_samples`` samples: ``(S - receptive_field) // hop + 1`` (400 and 320 here), or 0."""
        return num_frames(n_samples, self.receptive_field, self.hop)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames per item: (B,) samples -> (B,) int64 frames."""
        n = torch.div(lengths.long() - self.receptive_field, self.hop, rounding_mode="floor") + 1
        return n.clamp(min=0)

    def _normalize(self, wav: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance over each item's valid samples, as Wav2Vec2FeatureExtractor does."""
        n = valid.sum(1, keepdim=True).clamp(min=1)  # (B,1)
        mean = (wav * valid).sum(1, keepdim=True) / n  # (B,1)
        var = (((wav - mean) * valid) ** 2).sum(1, keepdim=True) / n  # (B,1)
        return (wav - mean) / torch.sqrt(var + 1e-7) * valid  # (B,S) padding stays 0

    def _encode(self, wav: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One backbone pass: (B,S) -> (B,T,D) for the chosen layer."""
        need_all = self.layer != "last"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.backbone(wav, attention_mask=mask, output_hidden_states=need_all)
        if self.layer == "last":
            return out.last_hidden_state  # (B,T,D)
        if isinstance(self.layer, int):
            return out.hidden_states[self.layer]  # (B,T,D)
        states = torch.stack(out.hidden_states, 0)  # L+1 x (B,T,D) -> (L+1,B,T,D)
        w = torch.softmax(self.layer_weights, 0).to(states.dtype)  # (L+1,)
        return torch.einsum("l,lbtd->btd", w, states)  # (L+1,B,T,D)->(B,T,D)

    def forward(self, wav: torch.Tensor | np.ndarray, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav: float32 (B,S) or (S,) in [-1,1] at 16 kHz; lengths: (B,) valid samples (default S).

        Returns float32 (B,T,D) (or (T,D) for a 1-D input) at 50 Hz, T = (S - 400) // 320 + 1.
        """
        x = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        squeeze = x.ndim == 1
        if squeeze:
            x = x[None]  # (S,)->(1,S)
        if x.ndim != 2:
            raise InputError(f"speech encoder expects a (B,S) or (S,) waveform, got shape {tuple(x.shape)}")
        B, S = x.shape
        if S < self.receptive_field:
            raise InputError(
                f"audio too short for the speech encoder: {S} samples < {self.receptive_field} "
                f"({1000 * self.receptive_field / self.sample_rate_hz:.0f} ms at 16 kHz)"
            )
        lengths = torch.full((B,), S, device=x.device) if lengths is None else lengths.to(x.device).long()
        valid = (torch.arange(S, device=x.device)[None] < lengths[:, None]).to(x.dtype)  # (B,S)
        x = self._normalize(x, valid) if self.do_normalize else x * valid  # (B,S)
        mask = valid.long() if self.use_attention_mask else None  # (B,S)
        T = self.num_frames(S)
        chunk = None if self.chunk_s is None else max(1, round(self.chunk_s * self.frame_rate_hz))
        if chunk is None or T <= chunk:
            feats = self._encode(x, mask)  # (B,S)->(B,T,D)
        else:
            feats = self._encode_chunked(x, mask, T, chunk)  # (B,S)->(B,T,D)
        keep = torch.arange(T, device=x.device)[None] < self.frame_lengths(lengths)[:, None]  # (B,T)
        feats = torch.where(keep[..., None], feats, torch.zeros((), dtype=feats.dtype, device=feats.device))
        return feats[0] if squeeze else feats  # (B,T,D) or (T,D)

    def hidden_states(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All hidden states of the backbone in one pass (e.g. for a learned layer sum downstream).

        wav: float32 (B,S) in [-1,1] at 16 kHz; lengths: (B,) valid samples (default S).
        Returns (states float32 (L+1,B,T,D) at 50 Hz, frame mask bool (B,T), True = valid frame).
        Input normalisation and attention mask follow the encoder's settings (as forward does);
        gradients reach the backbone only when it is not frozen. No chunking: keep inputs short.
        """
        x = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        if x.ndim != 2:
            raise InputError(f"speech encoder expects (B,S) waveforms, got shape {tuple(x.shape)}")
        B, S = x.shape
        if S < self.receptive_field:
            raise InputError(f"audio too short: {S} samples < {self.receptive_field} (25 ms at 16 kHz)")
        lengths = torch.full((B,), S, device=x.device) if lengths is None else lengths.to(x.device).long()
        valid = (torch.arange(S, device=x.device)[None] < lengths[:, None]).to(x.dtype)  # (B,S)
        x = self._normalize(x, valid) if self.do_normalize else x * valid  # (B,S)
        mask = valid.long() if self.use_attention_mask else None  # (B,S)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.backbone(x, attention_mask=mask, output_hidden_states=True)
        states = torch.stack(out.hidden_states, 0).float()  # L+1 x (B,T,D) -> (L+1,B,T,D)
        T = states.shape[2]
        keep = torch.arange(T, device=x.device)[None] < self.frame_lengths(lengths)[:, None]  # (B,T)
        keep[:, 0] |= True  # a clip shorter than one frame still pools its first frame
        return states, keep

    def _encode_chunked(self, x: torch.Tensor, mask: torch.Tensor | None, T: int, chunk: int) -> torch.Tensor:
        """Windows of ``chunk`` output frames with ``overlap_s`` of context each side: (B,S) -> (B,T,D).

        A window starts on a multiple of the hop, so its frame j is global frame lo + j exactly.
        """
        from tqdm.auto import tqdm

        ov = max(0, round(self.overlap_s * self.frame_rate_hz))
        starts = range(0, T, chunk)
        parts = []
        for a in tqdm(starts, desc="speech encoder", unit="chunk", disable=not self.progress, leave=False):
            b = min(a + chunk, T)
            lo, hi = max(0, a - ov), min(T, b + ov)
            s0, s1 = lo * self.hop, (hi - 1) * self.hop + self.receptive_field
            seg_mask = None if mask is None else mask[:, s0:s1]  # (B,S)->(B,s)
            out = self._encode(x[:, s0:s1], seg_mask)  # (B,s)->(B,hi-lo,D)
            parts.append(out[:, a - lo : b - lo])  # (B,hi-lo,D)->(B,b-a,D)
        return torch.cat(parts, 1)  # (B,T,D)

    @torch.no_grad()
    def encode_file(self, path: str | os.PathLike, cache=None) -> np.ndarray:
        """Encode an audio or video file: float32 (T,D) at 50 Hz; cached in ``cache`` (a FeatureCache) when given."""
        from a2v.audio.io import load_audio

        def compute() -> np.ndarray:
            wav = load_audio(path, sr=self.sample_rate_hz)  # (S,)
            return self(wav).float().cpu().numpy()  # (S,)->(T,D)

        if cache is None:
            return compute()
        extra = {"chunk_s": self.chunk_s, "overlap_s": self.overlap_s if self.chunk_s else None}
        if self.layer_weights is not None:
            w = self.layer_weights.detach().float().cpu().numpy()
            extra["layer_weights"] = [float(v) for v in w]
        return cache.get_or_compute(path, self.cache_id, str(self.layer), compute, extra=extra)

