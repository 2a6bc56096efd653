"""Data of the talk recipe: prepared clips in, inverted latents on disk, offsets and training windows out.

Latent store (written by the ``invert`` stage, read by ``vae`` and ``embed2lat``)::

    DIR/index.json            {"format", "fps", "audio_sr", "num_ws", "w_dim", "clips": [{"id", "n_frames"}],
                               "complete": bool, "settings": {...}}  (rewritten after every group of clips;
                               "complete" false while the stage runs; "settings" = what the results depend on)
    DIR/<id>.safetensors      ws float32 (F,num_ws,w_dim); loss float32 (F,) (inversion loss per frame);
                              mse float32 (F,) (pixel MSE on [-1,1] images); audio float32 (S,) 16 kHz

Offsets (paper sec. 3.2): ``dw_f = w_f - w_0`` on the W+ rows ``layers``, flattened, so a clip gives
float32 (F, len(layers) * w_dim); they are normalised by one global mean and standard deviation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.errors import InputError
from a2v.io import atomic_path, write_json_atomic

LATENTS_FORMAT = "a2v.talk_latents/1"
INDEX = "index.json"


# --- prepared dataset (a2v prepare talk) ----------------------------------------------------------


@dataclass
class Clip:
    """One prepared clip: frames uint8 (F,H,W,3) RGB face crops at ``fps``; audio float32 (S,) at 16 kHz."""

    id: str
    frames: np.ndarray
    audio: np.ndarray
    fps: float


def iter_prepared_clips(dataset_dir: str | Path, max_clips: int = 0) -> Iterator[Clip]:
    """Clips of a dataset written by ``a2v prepare talk`` (members crop.mp4, audio.npy, meta.json)."""
    from a2v.data.shards import decode_crop_video, iter_items

    for n, item in enumerate(iter_items(dataset_dir, keys=["crop.mp4", "audio.npy", "meta.json"])):
        if max_clips and n >= max_clips:
            return
        missing = [k for k in ("crop.mp4", "audio.npy", "meta.json") if k not in item]
        if missing:
            raise InputError(f"item {item['__key__']} of {dataset_dir} lacks {', '.join(missing)}; "
                             "prepare it with `a2v prepare talk`")
        frames = np.stack(list(decode_crop_video(item["crop.mp4"])))  # F x (C,C,3) -> (F,C,C,3)
        yield Clip(item["__key__"], frames, item["audio.npy"].astype(np.float32), float(item["meta.json"]["fps"]))


def frames_to_tensor(frames: np.ndarray, size_px: int) -> torch.Tensor:
    """uint8 (F,H,W,3) [0,255] -> float32 (F,3,size,size) in [-1,1] (area-resized when H != size)."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float()  # (F,H,W,3)->(F,3,H,W)
    if x.shape[-1] != size_px or x.shape[-2] != size_px:
        x = torch.nn.functional.interpolate(x, size=(size_px, size_px), mode="area")  # (F,3,H,W)->(F,3,s,s)
    return x / 127.5 - 1.0


def tensor_to_frames(img: torch.Tensor) -> np.ndarray:
    """float (F,3,H,W) in [-1,1] -> uint8 (F,H,W,3) [0,255] (clamped)."""
    x = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()  # (F,3,H,W)->(F,H,W,3)


# --- latent store -----------------------------------------------------------------------------------


class LatentStore:
    """Folder of inverted clips (see module docstring). ``LatentStore(dir).clip(id)`` -> dict of tensors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.index = read_latent_index(self.path)
        if not self.index.get("complete", True):
            raise InputError(f"the latents in {self.path} are incomplete ({len(self.ids)} clips; the invert stage was "
                             "interrupted): run `a2v talk train --stage invert --resume`")

    @property
    def ids(self) -> list[str]:
        return [c["id"] for c in self.index["clips"]]

    @property
    def fps(self) -> float:
        return float(self.index["fps"])

    def clip(self, clip_id: str) -> dict[str, torch.Tensor]:
        """{"ws": (F,num_ws,w_dim), "loss": (F,), "mse": (F,), "audio": (S,)} float32 on the CPU."""
        from safetensors.torch import load_file

        f = self.path / f"{clip_id}.safetensors"
        if not f.is_file():
            raise InputError(f"latent file {f} named in {self.path / INDEX} is missing; re-run the invert stage")
        return load_file(str(f))

    @staticmethod
    def write_clip(path: str | Path, clip_id: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Write one clip's file atomically; returns its index row {"id", "n_frames"}."""
        from safetensors.torch import save_file

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / f"{clip_id}.safetensors") as tmp:
            save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        return {"id": clip_id, "n_frames": int(tensors["ws"].shape[0])}

    @staticmethod
    def write_index(path: str | Path, rows: Sequence[dict[str, Any]], fps: float, audio_sr: int, num_ws: int,
                    w_dim: int, *, complete: bool = True, settings: dict[str, Any] | None = None) -> None:
        """Write ``index.json`` atomically (``complete=False`` while clips are still being added)."""
        write_json_atomic(Path(path) / INDEX, {"format": LATENTS_FORMAT, "fps": float(fps), "audio_sr": int(audio_sr),
                                               "num_ws": int(num_ws), "w_dim": int(w_dim), "clips": list(rows),
                                               "complete": bool(complete), "settings": settings or {}})

    @staticmethod
    def write(path: str | Path, clips: Sequence[tuple[str, dict[str, torch.Tensor]]], fps: float, audio_sr: int,
              num_ws: int, w_dim: int) -> LatentStore:
        """Write ``clips`` = [(id, {"ws", "loss", "mse", "audio"})] and the index (each file atomically)."""
        rows = [LatentStore.write_clip(path, cid, tensors) for cid, tensors in clips]
        LatentStore.write_index(path, rows, fps, audio_sr, num_ws, w_dim)
        return LatentStore(path)


def read_latent_index(path: str | Path) -> dict[str, Any]:
    """The ``index.json`` of a latent folder, complete or not (InputError when missing or not a latent index)."""
    p = Path(path) / INDEX
    if not p.is_file():
        raise InputError(f"no inverted latents in {Path(path)} (missing {INDEX}); run `a2v talk train --stage invert`")
    index = json.loads(p.read_text(encoding="utf-8"))
    if index.get("format") != LATENTS_FORMAT:
        raise InputError(f"{p} is not a talk latent index (format {index.get('format')!r})")
    return index


def split_ids(ids: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Deterministic clip split: every k-th clip (k = round(1 / val_fraction)) is held out; >= 1 train clip."""
    ids = list(ids)
    if val_fraction <= 0 or len(ids) < 2:
        return ids, []
    k = max(2, round(1 / val_fraction))
    val = [c for i, c in enumerate(ids) if i % k == k - 1]
    return [c for c in ids if c not in set(val)], val


# --- offsets ------------------------------------------------------------------------------------------


def offsets(ws: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """W+ of one clip (F,num_ws,w_dim) -> dw (F, len(layers) * w_dim): rows ``layers`` minus frame 0's."""
    if max(layers) >= ws.shape[1]:
        raise InputError(f"latents.layers {tuple(layers)} need >= {max(layers) + 1} W+ rows, the generator has "
                         f"{ws.shape[1]}")
    sel = ws[:, list(layers)]  # (F,num_ws,w_dim)->(F,L,w_dim)
    return (sel - sel[:1]).flatten(1)  # (F,L,w_dim)->(F,L*w_dim)


def apply_offsets(w0: torch.Tensor, dw: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`offsets`: w0 (num_ws,w_dim), dw (F, L*w_dim) -> ws (F,num_ws,w_dim), rows ``layers``
    = w0 + dw, the other rows = w0."""
    F, L = dw.shape[0], len(layers)
    ws = w0[None].repeat(F, 1, 1)  # (num_ws,w_dim)->(F,num_ws,w_dim)
    ws[:, list(layers)] = w0[list(layers)][None] + dw.reshape(F, L, -1)  # (F,L*w_dim)->(F,L,w_dim)
    return ws


@dataclass(frozen=True)
class Normalizer:
    """One global mean and standard deviation of all offset values (paper sec. 3.2)."""

    mean: float
    std: float

    @staticmethod
    def fit(x: torch.Tensor) -> Normalizer:
        """x float (N,D) -> global mean/std (std floored at 1e-8)."""
        return Normalizer(float(x.mean()), max(float(x.std()), 1e-8))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


def load_offsets(store: LatentStore, layers: Sequence[int], ids: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Clip id -> raw offsets float32 (F, L*w_dim) for ``ids`` (default all clips of the store)."""
    return {cid: offsets(store.clip(cid)["ws"], layers) for cid in (ids if ids is not None else store.ids)}


class FrameDataset(torch.utils.data.Dataset):
    """Normalised offset vectors of all frames: item i -> float32 (D,). x: (N,D)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def frame_ratio(feat_rate_hz: float, fps: float) -> int:
    """Speech feature steps per video frame (50 Hz features at 25 fps: 2); InputError when not a whole number."""
    ratio = feat_rate_hz / fps
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise InputError(f"{feat_rate_hz} Hz features are not a whole number per frame at {fps} fps")
    return round(ratio)


class WindowDataset(torch.utils.data.Dataset):
    """Aligned Embed2Lat inputs and targets: speech features and VAE codes of whole clips or of windows.

    feats: per clip float32 (T,D) at ``feat_rate_hz``; codes: per clip float32 (F,Z) at ``fps``. Frame f owns
    the feature rows [f r, (f+1) r), r = feat_rate_hz / fps (50 Hz, 25 fps: 2); rows past the end of a clip's
    audio are zero and masked. Item -> {"feats": (W r,D), "feat_mask": (W r,) bool, "codes": (W,Z),
    "mask": (W,) bool} (True = real).

    window_frames = 0: one item per clip, W = F (whole clips). window_frames = W > 0: windows of W frames starting
    every ``hop_frames`` frames (default W // 2, training) inside the clip; ``tile=True`` instead starts them
    every W frames over the whole clip (every frame once: validation and generation); a clip shorter than a
    window, and with ``tile`` the last window, is padded and masked. Batches of whole clips of different
    lengths: :func:`collate_padded`.
    """

    def __init__(self, feats: Sequence[torch.Tensor], codes: Sequence[torch.Tensor], window_frames: int,
                 feat_rate_hz: float = 50.0, fps: float = 25.0, *, hop_frames: int = 0, tile: bool = False) -> None:
        self.ratio, self.W = frame_ratio(feat_rate_hz, fps), int(window_frames)
        self.feats, self.codes = list(feats), list(codes)
        if self.W <= 0:
            self.index = [(i, 0) for i in range(len(self.codes))]
        elif tile:
            self.index = [(i, s) for i, c in enumerate(self.codes) for s in range(0, max(1, c.shape[0]), self.W)]
        else:
            hop = hop_frames or max(1, self.W // 2)
            self.index = [(i, s) for i, c in enumerate(self.codes)
                          for s in range(0, max(1, c.shape[0] - self.W + 1), hop)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, s = self.index[k]
        f, c = self.feats[i], self.codes[i]
        W = self.W if self.W > 0 else c.shape[0]
        Tw = W * self.ratio
        feats = torch.zeros(Tw, f.shape[1])
        part = f[s * self.ratio : s * self.ratio + Tw]  # (T,D)->(<=Tw,D)
        feats[: part.shape[0]] = part
        codes = torch.zeros(W, c.shape[1])
        cp = c[s : s + W]  # (F,Z)->(<=W,Z)
        codes[: cp.shape[0]] = cp
        mask = torch.arange(W) < cp.shape[0]  # (W,)
        feat_mask = torch.arange(Tw) < min(part.shape[0], cp.shape[0] * self.ratio)  # (Tw,)
        return {"feats": feats, "feat_mask": feat_mask, "codes": codes, "mask": mask}

    def frames(self, k: int) -> tuple[int, int]:
        """(clip index, first frame) of item ``k``."""
        return self.index[k]


def collate_padded(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items of :class:`WindowDataset` along a new batch axis, zero-padding the time axis to the longest
    (padding masked False): {"feats": (B,T,D), "feat_mask": (B,T), "codes": (B,W,Z), "mask": (B,W)}."""
    out = {}
    for key in items[0]:
        n = max(it[key].shape[0] for it in items)
        x = items[0][key].new_zeros((len(items), n, *items[0][key].shape[1:]))  # (B,n,...), zeros / False
        for b, it in enumerate(items):
            x[b, : it[key].shape[0]] = it[key]
        out[key] = x
    return out
