"""Helpers of the talk recipe tests: a tiny random wav2vec2 folder, clips a generator made, a prepared dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]


def save_tiny_wav2vec2(folder: Path) -> Path:
    """A tiny random wav2vec2 (hidden 32, 2 layers; CNN hop 320 = 50 Hz) saved with a feature extractor."""
    from transformers import AutoModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(folder)
    return folder


def make_clips(G, n_clips: int = 3, n_frames: int = 15, fps: float = 25.0, seed: int = 0):
    """Clips the generator made: W+ moving linearly between two mapped codes; audio = tone + noise at 16 kHz."""
    from a2v.recipes.talk.data import Clip, tensor_to_frames

    g = torch.Generator().manual_seed(seed)
    clips = []
    for k in range(n_clips):
        w = G.mapping(torch.randn(2, G.z_dim, generator=g))  # (2,num_ws,w_dim)
        t = torch.linspace(0, 1, n_frames)[:, None, None]  # (F,1,1)
        ws = w[0:1] + t * (w[1:2] - w[0:1])  # (F,num_ws,w_dim)
        with torch.no_grad():
            frames = tensor_to_frames(G.synthesis(ws))  # (F,R,R,3)
        S = round(n_frames / fps * 16000)
        time_s = np.arange(S) / 16000
        rng = np.random.default_rng(seed + k)
        audio = (0.3 * np.sin(2 * np.pi * (150 + 50 * k) * time_s) + 0.05 * rng.standard_normal(S)).astype(np.float32)
        clips.append(Clip(f"clip{k}", frames, audio, fps))
    return clips


def write_prepared_dataset(root: Path, clips) -> Path:
    """A dataset folder like `a2v prepare talk` writes (crop.mp4, audio.npy, meta.json per item; manifest)."""
    from a2v.data.shards import MANIFEST, ShardWriter, append_jsonl
    from a2v.video import VideoWriter

    rows: list[dict] = []
    with ShardWriter(root, "0000", on_close=lambda shard, keys: rows.extend({"id": k, "shard": shard} for k in keys)) as sw:
        for c in clips:
            crop = root / f"{c.id}.mp4"
            with VideoWriter(crop, c.fps, crf=0) as w:
                for f in c.frames:
                    w.write(f)
            sw.add(c.id, {"crop.mp4": crop, "audio.npy": c.audio, "meta.json": {"fps": c.fps,
                                                                                "n_frames": len(c.frames)}})
    append_jsonl(root / MANIFEST, rows)
    return root


class LookupEncoder(torch.nn.Module):
    """A "perfect" encoder for known images: images (1,3,R,R) in [0,1] -> the W+ (1,num_ws,w_dim) of the nearest
    stored image."""

    def __init__(self, images01: torch.Tensor, ws: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images01.clone())  # (K,3,R,R)
        self.register_buffer("ws", ws.clone())  # (K,num_ws,w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = (self.images - x).pow(2).flatten(1).sum(1)  # (K,3,R,R)->(K,)
        return self.ws[d.argmin()][None]  # (num_ws,w_dim)->(1,num_ws,w_dim)


def export_lookup_encoder(clips, G, ws: torch.Tensor, path: Path) -> Path:
    """torch.export archive of a LookupEncoder mapping the first frame of each clip to ``ws[i]`` (N,num_ws,w_dim)."""
    from a2v.recipes.talk.data import frames_to_tensor

    imgs = torch.cat([frames_to_tensor(c.frames[:1], G.resolution) for c in clips])  # (N,3,R,R) in [-1,1]
    torch.export.save(torch.export.export(LookupEncoder((imgs + 1) / 2, ws), (imgs[:1],)), str(path))
    return path
