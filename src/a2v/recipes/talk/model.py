"""Embed2Lat (talk paper sec. 3.4): speech features (B,T,D) at 50 Hz -> VAE codes (B,F,Z) at the video rate.

    net = Embed2Lat(Embed2LatSettings(), in_dim=768, code_dim=96)
    codes = net(feats, n_frames=75)            # (B,150,768) -> (B,75,96)

Structure: linear input projection, then a transformer with wav2vec2's encoder structure
(convolutional relative position embedding, post-LN layers with GELU feed-forward; transformers'
``Wav2Vec2Encoder``, built from a config, not pretrained), adaptive average pooling over time to
the number of video frames (fps * duration), and a linear layer to the code width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2v.recipes.talk.config import Embed2LatSettings


class Embed2Lat(nn.Module):
    """feats float (B,T,in_dim), optional mask bool (B,T) (True = valid) -> codes float (B,F,code_dim)."""

    def __init__(self, cfg: Embed2LatSettings, in_dim: int = 768, code_dim: int = 96) -> None:
        super().__init__()
        from transformers import Wav2Vec2Config
        from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2Encoder

        self.cfg, self.in_dim, self.code_dim = cfg, int(in_dim), int(code_dim)
        wcfg = Wav2Vec2Config(
            hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size, num_conv_pos_embeddings=cfg.conv_pos_kernel,
            num_conv_pos_embedding_groups=cfg.conv_pos_groups, hidden_dropout=cfg.dropout,
            attention_dropout=cfg.dropout, activation_dropout=cfg.dropout, layerdrop=0.0,
            do_stable_layer_norm=False,
        )
        wcfg._attn_implementation = "sdpa"  # built standalone: no PreTrainedModel to pick the attention kernel
        self.proj = nn.Linear(self.in_dim, cfg.hidden_size)
        self.encoder = Wav2Vec2Encoder(wcfg)
        self.head = nn.Linear(cfg.hidden_size, self.code_dim)

    def forward(self, feats: torch.Tensor, n_frames: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        if feats.ndim != 3 or feats.shape[-1] != self.in_dim:
            raise ValueError(f"Embed2Lat expects feats (B,T,{self.in_dim}), got {tuple(feats.shape)}")
        h = self.proj(feats)  # (B,T,D_in)->(B,T,H)
        h = self.encoder(h, attention_mask=mask).last_hidden_state  # (B,T,H)
        if mask is not None:
            h = h * mask[..., None].to(h.dtype)  # padded steps out of the pooled means (they are zero)
        h = F.adaptive_avg_pool1d(h.transpose(1, 2), int(n_frames)).transpose(1, 2)  # (B,T,H)->(B,F,H)
        return self.head(h)  # (B,F,H)->(B,F,Z)


@torch.no_grad()
def predict_clip_codes(net: Embed2Lat, feats: torch.Tensor, n_frames: int, window_frames: int,
                       feat_rate_hz: float = 50.0, fps: float = 25.0, batch: int = 64) -> torch.Tensor:
    """Codes of one clip, run as Embed2Lat is trained: feats float (T,D) at ``feat_rate_hz`` -> (F,Z) at ``fps``.

    window_frames = 0: the whole clip in one pass; W > 0: consecutive windows of W frames (the last one padded and
    masked), the same windows as training (data.WindowDataset), each frame predicted once.
    """
    from a2v.recipes.talk.data import WindowDataset, collate_padded

    dev = next(net.parameters()).device
    ds = WindowDataset([feats], [torch.zeros(int(n_frames), 1)], window_frames, feat_rate_hz, fps, tile=True)
    out = []
    for a in range(0, len(ds), batch):
        b = collate_padded([ds[k] for k in range(a, min(a + batch, len(ds)))])
        codes = net(b["feats"].to(dev), b["mask"].shape[1], b["feat_mask"].to(dev))  # (b,Tw,D)->(b,W,Z)
        out.append(codes[b["mask"].to(dev)])  # (b,W,Z)->(frames,Z)
    return torch.cat(out)[: int(n_frames)]  # (F,Z)
