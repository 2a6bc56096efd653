"""Tongue data: utterances from UltraSuite/TaL folders or UTI videos, a prepared folder, training clips.

Inputs (``a2v prepare tongue -i DIR``):

- UltraSuite / TaL: ``name.ult`` + ``name.param`` + ``name.wav`` (+ ``name.txt`` transcript,
  first line the prompt); synchronised with TimeInSecsOfFirstFrame, scan-converted (``fan``)
  or kept as scanlines (``raw``), resampled to ``data.fps``.
- UTI videos with an audio track (``.mp4 .mkv .avi .mov``), grey from the RGB mean, read at
  ``data.fps`` (+ ``name.txt``).

Prepared folder: ``items/<name>.npz`` (frames uint8 (F,S,S) at the full size, wav float32 (S,)
16 kHz, fps, text), ``manifest.jsonl`` (one line per item), ``dropped.jsonl``, ``report.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.errors import A2VError, InputError
from a2v.io import atomic_path, write_json_atomic, write_text_atomic
from a2v.recipes.tongue.config import DataConfig
from a2v.recipes.tongue.ultrasound import (
    FanConverter,
    raw_view,
    read_param,
    read_ult,
    resample_frames,
    resize_frames,
    synchronize,
)

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".m4v")

__all__ = ["Utterance", "find_inputs", "load_utterance", "read_transcript", "prepare_folder", "load_prepared",
           "split_names", "TongueClips", "collate_clips", "to_unit", "from_unit"]


@dataclass
class Utterance:
    """One recording: frames uint8 (F,H,W) at ``fps``; wav float32 (S,) in [-1,1] at 16 kHz; text or None."""

    name: str
    frames: np.ndarray
    wav: np.ndarray
    fps: float
    text: str | None = None


def read_transcript(media: Path, suffix: str = ".txt") -> str | None:
    """First non-empty line of ``media.with_suffix(suffix)``, or None when there is no such file."""
    p = media.with_suffix(suffix)
    if not p.is_file():
        return None
    lines = [s.strip() for s in p.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip()]
    return lines[0] if lines else None


def find_inputs(paths: list[Path]) -> list[Path]:
    """``.ult`` files and videos under ``paths`` (files or folders), sorted, without duplicates."""
    out: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.update(f for f in p.rglob("*") if f.suffix.lower() in (".ult", *VIDEO_SUFFIXES))
        elif p.is_file():
            out.add(p)
        else:
            raise InputError(f"input not found: {p}")
    return sorted(out)


def load_utterance(path: Path, cfg: DataConfig) -> Utterance:
    """Read one UltraSuite/TaL ``.ult`` (with .param, .wav) or UTI video into an :class:`Utterance`."""
    from a2v.audio import load_audio

    path = Path(path)
    text = read_transcript(path, cfg.transcript_suffix)
    if path.suffix.lower() == ".ult":
        prm = read_param(path.with_suffix(".param"))
        wav_path = path.with_suffix(".wav")
        if not wav_path.is_file():
            raise InputError(f"{path}: no audio file {wav_path.name} beside it")
        scan = read_ult(path, prm)  # (F,N,P)
        wav = load_audio(wav_path, sr=cfg.sample_rate_hz)  # (S,)
        if cfg.sync:
            s = synchronize(wav, cfg.sample_rate_hz, scan, prm.FramesPerSec, prm.TimeInSecsOfFirstFrame)
            wav, scan = s.wav, s.frames
        img = FanConverter(prm, cfg.fan_height_px)(scan) if cfg.view == "fan" else raw_view(scan)  # (F,H,W)
        fps = cfg.fps or prm.FramesPerSec
        frames = resample_frames(img, prm.FramesPerSec, fps)  # (F,H,W)->(F',H,W)
        return Utterance(path.stem, frames, wav, fps, text)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from a2v.video import probe, read_frames

        info = probe(path)
        fps = cfg.fps or float(info.fps)
        gray = [f.mean(axis=2).round().astype(np.uint8) for f in read_frames(path, fps=fps)]  # F x (H,W)
        if not gray:
            raise InputError(f"{path}: no video frames could be decoded; re-encode the file (e.g. with ffmpeg)")
        frames = np.stack(gray)  # (F,H,W)
        wav = load_audio(path, sr=cfg.sample_rate_hz)  # (S,)
        return Utterance(path.stem, frames, wav, fps, text)
    raise InputError(f"{path}: not an ultrasound (.ult) or video file")


def prepare_folder(inputs: list[Path], output: Path, cfg: DataConfig, size_px: int, num_shards: int = 1,
                   shard_index: int = -1, progress: bool = True) -> dict[str, Any]:
    """Convert inputs to ``output`` (see module docstring); this worker takes every ``num_shards``-th input.

    Bad inputs are listed in ``dropped.jsonl`` with the reason (never dropped silently);
    returns the report {"written", "dropped", "inputs"} (also ``report.json``).
    """
    from tqdm.auto import tqdm

    files = find_inputs(inputs)
    if not files:
        raise InputError(f"no .ult or video files under {', '.join(map(str, inputs))}")
    if num_shards > 1 and shard_index >= 0:
        files = files[shard_index::num_shards]
    items_dir = output / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    manifest, dropped = [], []
    for f in tqdm(files, desc="prepare tongue", unit="file", disable=not progress):
        try:
            u = load_utterance(f, cfg)
        except A2VError as e:
            dropped.append({"path": str(f), "reason": str(e)})
            continue
        frames = resize_frames(u.frames, size_px)  # (F,H,W)->(F,S,S)
        with atomic_path(items_dir / f"{u.name}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, frames=frames, wav=u.wav.astype(np.float32), fps=np.float64(u.fps),
                         text=np.str_(u.text or ""))
        manifest.append({"name": u.name, "source": str(f), "n_frames": int(len(frames)), "fps": u.fps,
                         "duration_s": len(u.wav) / cfg.sample_rate_hz, "has_text": u.text is not None})
    tag = f".{shard_index:04d}" if num_shards > 1 and shard_index >= 0 else ""
    write_text_atomic(output / f"manifest{tag}.jsonl", "".join(json.dumps(m) + "\n" for m in manifest))
    write_text_atomic(output / f"dropped{tag}.jsonl", "".join(json.dumps(d) + "\n" for d in dropped))
    report = {"inputs": len(files), "written": len(manifest), "dropped": len(dropped), "size_px": size_px,
              "view": cfg.view, "fps": cfg.fps}
    write_json_atomic(output / f"report{tag}.json", report)
    return report


def load_prepared(folder: Path, names: list[str] | None = None) -> list[Utterance]:
    """Utterances of a prepared folder (all, or ``names``), sorted by name."""
    items = sorted((Path(folder) / "items").glob("*.npz"))
    if not items:
        raise InputError(f"{folder} holds no prepared items (items/*.npz): run `a2v prepare tongue -i ... -o {folder}`")
    out = []
    for p in items:
        if names is not None and p.stem not in names:
            continue
        with np.load(p) as z:
            text = str(z["text"]) or None
            out.append(Utterance(p.stem, z["frames"], z["wav"], float(z["fps"]), text))
    return out


def split_names(utts: list[Utterance], holdout_fraction: float) -> tuple[list[str], list[str]]:
    """(train, held-out) names: the last ``ceil(fraction * n)`` by sorted name are held out (at least one train)."""
    names = sorted(u.name for u in utts)
    k = min(len(names) - 1, int(np.ceil(holdout_fraction * len(names)))) if holdout_fraction > 0 else 0
    return names[: len(names) - k], names[len(names) - k:]


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F,H,W) in [0,255] -> float32 (1,F,H,W) in [-1,1]."""
    return torch.from_numpy(frames.astype(np.float32) / 127.5 - 1.0)[None]  # (F,H,W)->(1,F,H,W)


def from_unit(video: torch.Tensor) -> np.ndarray:
    """float (1,F,H,W) or (F,H,W) in [-1,1] -> uint8 (F,H,W)."""
    v = video.detach().float().cpu().reshape(-1, *video.shape[-2:])  # (1,F,H,W)->(F,H,W)
    return ((v.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


class TongueClips(torch.utils.data.Dataset):
    """Non-overlapping clips of ``clip_frames`` frames with their per-frame condition.

    ``encode(utterance) -> (audio float32 (F,Da) at the utterance fps, text float32 (L,Dt) | None)``
    (see :class:`a2v.recipes.tongue.model.ConditionEncoder`), computed once per utterance.
    Item: {"video": float32 (1,F,S,S) in [-1,1], "audio": (F,Da), "text": (L,Dt), "text_mask": bool (L,)}
    (text keys only when text is used). Utterances shorter than one clip are counted in
    ``self.too_short`` and reported, as are tail frames left after the last whole clip.
    """

    def __init__(self, utts: list[Utterance], clip_frames: int, size_px: int, encode: Any) -> None:
        self.items: list[dict[str, torch.Tensor]] = []
        self.too_short: list[str] = []
        self.tail_frames = 0
        for u in utts:
            n = len(u.frames) // clip_frames
            if n == 0:
                self.too_short.append(u.name)
                continue
            self.tail_frames += len(u.frames) - n * clip_frames
            audio, text = encode(u)  # (F,Da), (L,Dt)|None
            video = to_unit(resize_frames(u.frames, size_px))  # (1,F,S,S)
            for k in range(n):
                sl = slice(k * clip_frames, (k + 1) * clip_frames)
                item = {"video": video[:, sl], "audio": audio[sl]}  # (1,Fc,S,S), (Fc,Da)
                if text is not None:
                    item["text"] = text
                self.items.append(item)
        if self.too_short:
            log.warning("%d utterances shorter than %d frames left out: %s", len(self.too_short), clip_frames,
                        ", ".join(self.too_short[:5]))
        if not self.items:
            raise InputError(f"no utterance has {clip_frames} frames: lower data.clip_frames")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def collate_clips(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack clips; pad text to the longest L with a mask: text (B,L,Dt), text_mask bool (B,L)."""
    out = {"video": torch.stack([b["video"] for b in batch]), "audio": torch.stack([b["audio"] for b in batch])}
    if "text" in batch[0]:
        L = max(b["text"].shape[0] for b in batch)
        D = batch[0]["text"].shape[1]
        text = torch.zeros(len(batch), L, D)  # (B,L,Dt)
        mask = torch.zeros(len(batch), L, dtype=torch.bool)  # (B,L)
        for i, b in enumerate(batch):
            text[i, : len(b["text"])] = b["text"]
            mask[i, : len(b["text"])] = True
        out["text"], out["text_mask"] = text, mask
    return out
