"""Synthetic lip-sync data: a face whose mouth follows a fixed linear map of the (smoothed) MFCC."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from a2v.recipes.lipsync.data import LipSyncItem


def base_face() -> np.ndarray:
    """(68,2) a fixed plausible face: eyes at y=-0.4, nose near the origin, mouth below."""
    rng = np.random.default_rng(123)
    face = rng.uniform(-1, 1, (68, 2)) * 0.3
    face[0:17, 0] = np.linspace(-0.9, 0.9, 17)  # jaw, left to right
    face[0:17, 1] = 0.9 - 0.5 * np.linspace(-1, 1, 17) ** 2
    face[36:42] = [-0.5, -0.4]
    face[42:48] = [0.5, -0.4]
    face[27:36] = [0.0, 0.0]
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    face[48:68] = np.stack([0.35 * np.cos(ang), 0.5 + 0.15 * np.sin(ang)], 1)
    return face


MODES = np.random.default_rng(7).standard_normal((3, 20, 2)) * 0.05  # mouth motion modes
MAP = np.random.default_rng(8).standard_normal((13, 3)) / 13**0.5  # MFCC -> mouth factors


def synthetic_item(item_id: str, n_frames: int = 75, seed: int = 0, speaker: str | None = None) -> LipSyncItem:
    """mfcc (4F+1,13) smooth random at 100 Hz; landmarks (F,68,2) px whose mouth = MODES . (mean MFCC of the frame @ MAP)."""
    rng = np.random.default_rng(seed)
    t = 4 * n_frames + 1
    x = rng.standard_normal((t + 8, 13))
    kernel = np.hanning(9) / np.hanning(9).sum()
    mfcc = np.stack([np.convolve(x[:, d], kernel, mode="valid") for d in range(13)], 1) * 3  # (T,13)
    z = mfcc[: 4 * n_frames].reshape(n_frames, 4, 13).mean(1) @ MAP  # (F,13)->(F,3)
    lm = np.tile(base_face(), (n_frames, 1, 1))  # (F,68,2)
    lm[:, 48:68] += np.einsum("fk,kpd->fpd", z, MODES)
    lm[:, 8, 1] += 0.3 * z[:, 0]  # chin follows the first factor
    scale = rng.uniform(60, 90)
    return LipSyncItem(item_id, speaker or item_id, mfcc.astype(np.float32),
                       (lm * scale + rng.uniform(100, 200, 2)).astype(np.float32))


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def write_dataset(root: Path, items: list[LipSyncItem]) -> Path:
    """A folder in the layout of 'a2v prepare lipsync': manifest.jsonl + shards/0000-00000.tar."""
    (root / "shards").mkdir(parents=True, exist_ok=True)
    shard = "shards/0000-00000.tar"
    with tarfile.open(root / shard, "w") as tar:
        for it in items:
            meta = {"fps": 25.0, "n_frames": len(it.landmarks)}
            for name, data in (("landmarks.npy", _npy(it.landmarks)), ("meta.json", json.dumps(meta).encode()),
                               ("mfcc.npy", _npy(it.mfcc))):
                info = tarfile.TarInfo(f"{it.id}.{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    rows = [{"id": it.id, "source": f"{it.speaker}/{it.id}.mp4", "shard": shard, "n_frames": len(it.landmarks),
             "fps": 25.0} for it in items]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def train_renderer(renderer, batch: dict, steps: int) -> list[dict]:  # noqa: ANN001 - a2v Renderer
    """``steps`` alternating updates as RendererTask makes them (D, then G) on one batch, with the
    renderer's own optimizers; returns the generator step's logs of each update."""
    opt_g, opt_d = renderer.make_optimizers()
    logs = []
    for _ in range(steps):
        d_loss, _ = renderer.discriminator_step(batch)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss, g_logs = renderer.generator_step(batch)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        logs.append(g_logs)
    return logs
