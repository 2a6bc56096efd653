"""Audio-text fusion by cross-attention: every audio frame attends to the text tokens.

Yang et al. 2024, "An audio-textual diffusion model for converting speech signals into
ultrasound tongue imaging data" (ICASSP 2024), §2.2: speech features (wav2vec 2.0) are the
queries, text embeddings (BERT) the keys and values; the attended text is added to the audio
frame, giving one fused condition vector f_c per frame. Without text (the audio-only "A"
variant of the paper's tables) the same module returns the projected audio frames through the
same feed-forward block, so both variants share one parameter layout.
"""

from __future__ import annotations

import torch
from torch import nn

from a2v.nn.attention import MultiHeadAttention, sinusoidal_embedding

__all__ = ["CrossAttentionFusion"]


class CrossAttentionFusion(nn.Module):
    """(audio frames, text tokens) -> fused condition per frame.

    ``forward(audio float32 (B,F,Da), text float32 (B,L,Dt) | None, text_mask bool (B,L) | None)
    -> f_c float32 (B,F,D)``. Audio frames get a sine position embedding of their index (so a
    frame can tell where it sits in the utterance); the text attention branch starts at zero
    (zero-initialised output projection), so training begins from the audio-only mapping.
    """

    def __init__(self, audio_dim: int, text_dim: int | None, dim: int, heads: int = 4, layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.audio_proj = nn.Linear(audio_dim, dim)
        self.attn = nn.ModuleList(
            [MultiHeadAttention(dim, text_dim if i == 0 else dim, heads, dropout=dropout, zero_init=True)
             for i in range(layers)]
        ) if text_dim is not None else nn.ModuleList()
        self.text_proj = nn.Linear(text_dim, dim) if text_dim is not None and layers > 1 else None
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.out_norm = nn.LayerNorm(dim)

    @property
    def uses_text(self) -> bool:
        return len(self.attn) > 0

    def forward(self, audio: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, F, _ = audio.shape
        pos = sinusoidal_embedding(torch.arange(F, device=audio.device), self.dim)  # (F,)->(F,D)
        h = self.audio_proj(audio) + pos[None]  # (B,F,Da)->(B,F,D)
        if text is not None and self.uses_text:
            for i, attn in enumerate(self.attn):
                ctx = text if i == 0 or self.text_proj is None else self.text_proj(text)  # (B,L,Dt)->(B,L,D)
                h = h + attn(h, ctx, text_mask)  # (B,F,D) queries attend to (B,L,.) tokens
        h = h + self.ff(h)  # (B,F,D)
        return self.out_norm(h)
