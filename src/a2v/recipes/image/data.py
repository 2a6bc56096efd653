"""Paired (sound, picture) data of the ``image`` recipe: ``a2v prepare image`` and the datasets.

A prepared folder holds ``pairs/<id>.npz`` (``audio`` float32 (S,) in [-1,1] at 16 kHz,
``image`` uint8 (H,W,3) RGB square), ``manifest[_<shard>].jsonl`` (one line per pair: id,
source, frame_index, audio_s, split), ``dropped[_<shard>].jsonl`` (inputs left out and why) and
``report.json`` (counts), and optionally ``boxes/<id>.npy`` (float (N,4)) or ``boxes/<id>.json``
(``{"boxes": [[x1,y1,x2,y2], ...]}``): object-detector boxes in pixels of the prepared square picture, best
first (BriVL's image tower reads them; see :meth:`PairDataset.boxes`). A pair's ``label`` is the name of its file's folder (class folders as in
VGGSound), used by zero-shot classification and the two-alternative test. Inputs: videos with sound (VGGSound/AudioSet style: a random frame,
centre-cropped square, and ``clip_s`` seconds of audio centred on it) or audio files with an
image of the same name beside them (``dog.wav`` + ``dog.jpg``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.errors import A2VError, InputError
from a2v.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from a2v.recipes.image.config import DataConfig

SAMPLE_RATE_HZ = 16000
VIDEO_EXT = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".m4v", ".flv"}
AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac"}
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def _unit_hash(key: str) -> float:
    """A stable number in [0, 1) from a string (the train/val split never changes between runs)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) / float(16**12)


def split_of(item_id: str, val_fraction: float) -> str:
    return "val" if _unit_hash("split:" + item_id) < val_fraction else "train"


def centre_square(image: np.ndarray, size_px: int) -> np.ndarray:
    """uint8 (H,W,3) -> the centred square crop resized to uint8 (size,size,3) (area filter)."""
    import cv2

    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = image[y0:y0 + s, x0:x0 + s]  # (H,W,3)->(s,s,3)
    return cv2.resize(crop, (size_px, size_px), interpolation=cv2.INTER_AREA)  # (s,s,3)->(P,P,3)


def _audio_window(wav: np.ndarray, centre_s: float, clip_s: float) -> np.ndarray:
    """``clip_s`` seconds of (S,) audio centred on ``centre_s`` (shifted to fit; shorter audio kept whole)."""
    n = round(clip_s * SAMPLE_RATE_HZ)
    if wav.shape[0] <= n:
        return wav
    start = int(np.clip(round(centre_s * SAMPLE_RATE_HZ) - n // 2, 0, wav.shape[0] - n))
    return wav[start:start + n]  # (S,)->(n,)


def _pair_from_video(path: Path, cfg: DataConfig, item_id: str) -> tuple[np.ndarray, np.ndarray, int]:
    from a2v.video import probe, read_audio, read_frames

    info = probe(path)
    if not info.has_audio:
        raise InputError(f"{path} has no audio track")
    n = max(1, info.num_frames)
    if cfg.frame == "middle":
        k = n // 2
    else:
        k = int(np.random.default_rng([cfg.seed, int(_unit_hash("frame:" + item_id) * 2**31)]).integers(n))
    frame = None
    for i, f in enumerate(read_frames(path)):
        frame = f
        if i >= k:
            break
    if frame is None:
        raise InputError(f"{path} has no decodable video frame")
    k = min(k, i)
    wav, _ = read_audio(path, sr=SAMPLE_RATE_HZ)  # (S,)
    wav = _audio_window(wav, k / max(info.fps, 1e-6), cfg.clip_s)  # (S,)->(n,)
    return wav, centre_square(frame, cfg.image_size_px), k


def _pair_from_audio(path: Path, image_path: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, int]:
    from a2v.audio import load_audio
    from a2v.video import load_image

    wav = load_audio(path, sr=SAMPLE_RATE_HZ)  # (S,)
    wav = _audio_window(wav, wav.shape[0] / SAMPLE_RATE_HZ / 2, cfg.clip_s)  # (S,)->(n,)
    return wav, centre_square(load_image(image_path), cfg.image_size_px), -1


def read_boxes(path: Path) -> np.ndarray:
    """float32 (N,4) x1,y1,x2,y2 from a detector's ``.npy`` (N,4) (extra columns such as scores dropped) or
    ``.json`` (``{"boxes": [[x1,y1,x2,y2], ...]}`` or a bare list); InputError naming the file otherwise."""
    try:
        raw = np.load(path) if path.suffix == ".npy" else json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable box file {path}: {e}") from None
    if isinstance(raw, dict):
        raw = raw.get("boxes", [])
    arr = np.asarray(raw, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise InputError(f"box file {path}: expected (N,4) boxes x1,y1,x2,y2, got shape {arr.shape}")
    return arr[:, :4]  # (N,4)


def _boxes_beside(image_path: Path) -> Path | None:
    """``x.boxes.npy`` / ``x.boxes.json`` beside ``x.jpg`` (a detector's output for that picture), if any."""
    return next((p for p in (image_path.with_suffix(".boxes.npy"), image_path.with_suffix(".boxes.json"))
                 if p.is_file()), None)


def crop_boxes(boxes: np.ndarray, hw: tuple[int, int], size_px: int) -> np.ndarray:
    """Pixel boxes (N,4) of an (H,W) picture -> pixel boxes of its :func:`centre_square` at ``size_px``
    (clipped to the crop; boxes left with no area are dropped), float32 (M,4)."""
    h, w = hw
    s = min(h, w)
    off = np.array([(w - s) // 2, (h - s) // 2] * 2, np.float32)  # x0,y0,x0,y0
    out = np.clip((boxes - off) * (size_px / s), 0, size_px)  # (N,4)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])  # (N,)
    return out[keep].astype(np.float32)


def find_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path | None]]:
    """(media file, paired image or None) for every video, and every audio file with a same-named image."""
    out: list[tuple[Path, Path | None]] = []
    for given in inputs:
        p = Path(given)
        if not p.exists():
            raise InputError(f"input not found: {p}")
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            ext = f.suffix.lower()
            if ext in VIDEO_EXT:
                out.append((f, None))
            elif ext in AUDIO_EXT:
                img = next((f.with_suffix(e) for e in sorted(IMAGE_EXT) if f.with_suffix(e).is_file()), None)
                out.append((f, img))
    return out


def prepare_pairs(inputs: Iterable[str | Path], output: str | Path, cfg: DataConfig, num_shards: int = 1,
                  shard_index: int = -1, progress: bool = True) -> dict[str, Any]:
    """Write the (sound, picture) pairs of ``inputs`` into ``output``; returns the report dict.

    ``num_shards``/``shard_index``: this worker takes every ``num_shards``-th input from
    ``shard_index`` (-1 = all shards in this process). Inputs that fail are listed in
    ``dropped*.jsonl`` with the reason and counted, never silently skipped.
    """
    from tqdm.auto import tqdm

    out = Path(output)
    found = find_inputs(inputs)
    if not found:
        raise InputError(f"no video or audio files under {', '.join(map(str, inputs))}")
    if num_shards < 1 or shard_index >= num_shards:
        raise InputError(f"--shard-index {shard_index} must be < --num-shards {num_shards}")
    mine = found if shard_index < 0 else found[shard_index::num_shards]
    suffix = "" if shard_index < 0 else f"_{shard_index:04d}"
    rows, dropped = [], []
    for media, image in tqdm(mine, desc="prepare image", unit="file", disable=not progress):
        rel = str(media)
        item_id = hashlib.sha1(str(media.resolve()).encode()).hexdigest()[:16]
        try:
            boxes = None
            if media.suffix.lower() in AUDIO_EXT:
                if image is None:
                    raise InputError(f"no image beside {media} (expected {media.stem}.jpg/.png)")
                wav, picture, k = _pair_from_audio(media, image, cfg)
                if (bf := _boxes_beside(image)) is not None:
                    from a2v.video import load_image

                    boxes = crop_boxes(read_boxes(bf), load_image(image).shape[:2], cfg.image_size_px)
            else:
                wav, picture, k = _pair_from_video(media, cfg, item_id)
            if wav.shape[0] < 400:
                raise InputError(f"{media} has under 25 ms of audio")
        except A2VError as e:
            dropped.append({"source": rel, "reason": str(e)})
            continue
        buf = io.BytesIO()
        np.savez(buf, audio=wav.astype(np.float32), image=picture)
        write_bytes_atomic(out / "pairs" / f"{item_id}.npz", buf.getvalue())
        if boxes is not None:
            bbuf = io.BytesIO()
            np.save(bbuf, boxes)
            write_bytes_atomic(out / "boxes" / f"{item_id}.npy", bbuf.getvalue())
        rows.append({"id": item_id, "source": rel, "label": media.parent.name, "frame_index": int(k),
                     "detector_boxes": -1 if boxes is None else len(boxes),
                     "audio_s": wav.shape[0] / SAMPLE_RATE_HZ, "split": split_of(item_id, cfg.val_fraction)})
    write_text_atomic(out / f"manifest{suffix}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write_text_atomic(out / f"dropped{suffix}.jsonl", "".join(json.dumps(r) + "\n" for r in dropped))
    report = {"inputs": len(mine), "pairs": len(rows), "dropped": len(dropped),
              "with_detector_boxes": sum(r["detector_boxes"] >= 0 for r in rows),
              "val": sum(r["split"] == "val" for r in rows), "config": {
                  "image_size_px": cfg.image_size_px, "clip_s": cfg.clip_s, "frame": cfg.frame, "seed": cfg.seed}}
    write_json_atomic(out / f"report{suffix}.json", report)
    return report


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    """All manifest rows of a prepared folder (every shard), sorted by id."""
    root = Path(root)
    files = sorted(root.glob("manifest*.jsonl"))
    if not files:
        raise InputError(f"{root} is not a prepared image dataset (no manifest.jsonl): run a2v prepare image")
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["id"])


class PairDataset(torch.utils.data.Dataset):
    """Pairs of a prepared folder: ``[i] -> {"wav": float32 (S,), "length": int64, "image": float32 (3,P,P)
    in [0,1], "index": int64}``, S = ``clip_s`` * 16 kHz (zero-padded; a longer clip is cropped at a
    random start in training, centred otherwise). ``split``: "train", "val" or "all"."""

    def __init__(self, root: str | Path, split: str = "train", clip_s: float = 5.0, train: bool = True) -> None:
        self.root = Path(root)
        rows = read_manifest(self.root)
        self.rows = rows if split == "all" else [r for r in rows if r["split"] == split]
        self.num_samples = round(clip_s * SAMPLE_RATE_HZ)
        self.train = train

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(audio float32 (S,), image uint8 (P,P,3)) of pair ``i`` as stored."""
        f = self.root / "pairs" / f"{self.rows[i]['id']}.npz"
        if not f.is_file():
            raise InputError(f"pair file missing: {f} (the dataset folder is incomplete; run a2v prepare image again)")
        with np.load(f) as z:
            return z["audio"], z["image"]

    def boxes(self, i: int) -> np.ndarray | None:
        """Detector boxes of pair ``i``: float32 (N,4) x1,y1,x2,y2 as fractions of the picture's side in [0,1]
        (from ``boxes/<id>.npy|.json``, pixels of the prepared square picture), or None when there is no file."""
        d = self.root / "boxes"
        f = next((p for p in (d / f"{self.rows[i]['id']}.npy", d / f"{self.rows[i]['id']}.json") if p.is_file()), None)
        if f is None:
            return None
        with np.load(self.root / "pairs" / f"{self.rows[i]['id']}.npz") as z:
            side = float(z["image"].shape[0])
        return np.clip(read_boxes(f) / side, 0.0, 1.0)  # (N,4) pixels -> fractions

    def audio_item(self, i: int) -> dict[str, torch.Tensor]:
        """{"wav", "length", "index"} of pair ``i`` (the picture is not read)."""
        f = self.root / "pairs" / f"{self.rows[i]['id']}.npz"
        if not f.is_file():
            raise InputError(f"pair file missing: {f} (the dataset folder is incomplete; run a2v prepare image again)")
        with np.load(f) as z:
            wav = z["audio"]  # (S,)
        wav_t, n = fit_clip(torch.from_numpy(wav), self.num_samples, random_start=self.train)  # (S,)->(n,)
        return {"wav": wav_t, "length": torch.tensor(n), "index": torch.tensor(i)}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.audio_item(i)
        _, image = self.load(i)
        item["image"] = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0  # (P,P,3)->(3,P,P)
        return item


def fit_clip(wav: torch.Tensor, n: int, random_start: bool = False) -> tuple[torch.Tensor, int]:
    """(S,) -> ((n,) zero-padded or cropped, valid samples); the crop start is random (torch RNG) or centred."""
    S = wav.shape[0]
    if S >= n:
        start = int(torch.randint(0, S - n + 1, ())) if random_start else (S - n) // 2
        return wav[start:start + n].float(), n  # (S,)->(n,)
    return torch.nn.functional.pad(wav.float(), (0, n - S)), S  # (S,)->(n,)


class EmbeddedPairs(torch.utils.data.Dataset):
    """A pair dataset whose pictures are replaced by precomputed tower embeddings ``(N,E)`` or ``(N,V,E)``
    (V augmented views): ``[i] -> {"wav", "length", "image_emb" float32 (E,) or (V,E), "index"}`` (the tower
    is frozen, so this is exact)."""

    def __init__(self, pairs: torch.utils.data.Dataset, embeddings: torch.Tensor) -> None:
        if len(pairs) != embeddings.shape[0]:
            raise ValueError(f"{len(pairs)} pairs but {embeddings.shape[0]} embeddings")
        self.pairs, self.embeddings = pairs, embeddings.cpu()  # float16 view caches stay float16 in memory

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.pairs.audio_item(i)) if hasattr(self.pairs, "audio_item") else dict(self.pairs[i])
        item.pop("image", None)
        item["image_emb"] = self.embeddings[i].float()  # (E,) or (V,E)
        return item
