"""Tongue data: utterances from UltraSuite/TaL folders or UTI videos, a prepared folder, training clips.

Inputs (``a2v prepare tongue -i DIR``):

- UltraSuite / TaL: ``name.ult`` + ``name.param`` + ``name.wav`` (+ ``name.txt`` transcript,
  first line the prompt); synchronised with TimeInSecsOfFirstFrame, scan-converted (``fan``)
  or kept as scanlines (``raw``), resampled to ``data.fps``. A ``.wav`` or ``.param`` without
  its ``.ult`` and TaL lip videos (``*_lips.mp4``) are listed in ``skipped.jsonl`` with the reason.
- UTI videos with an audio track (``.mp4 .mkv .avi .mov``), grey from the RGB mean, read at
  ``data.fps`` (+ ``name.txt``); ``data.video_crop_px`` cuts the ultrasound panel out of a
  composite frame. With ``data.videos=auto`` videos count as ultrasound only when the inputs
  hold no ``.ult`` recording (else they are lip or render videos and are skipped, listed).

Item names are the paths relative to the input folder without the suffix (``01M/000_xaud``),
so that corpora reusing file names in every speaker folder keep every recording; with several
input folders the folder's own name comes first. The speaker of an item is its folder
(``01M``), used by the speaker-disjoint split (``data.split_by=speaker``).

Prepared folder: ``items/<name>.npz`` (frames uint8 (F,S,S) at the full size, wav float32 (S,)
16 kHz, fps, text), ``manifest.jsonl`` (one line per item), ``dropped.jsonl`` (inputs that
failed), ``skipped.jsonl`` (files not taken as inputs), ``split.json`` (train / test names),
``report.json``.
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
from a2v.recipes.tongue.corpus import (
    VIDEO_SUFFIXES,
    corpus_language,
    find_inputs,
    scan_inputs,
    speaker_of,
    split_for,
    split_names,
    transcript_language,
)
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


__all__ = ["Utterance", "find_inputs", "scan_inputs", "speaker_of", "load_utterance", "read_transcript",
           "prepare_folder", "load_prepared", "split_names", "split_for", "align_to_reference", "transcript_language", "corpus_language", "TongueClips", "collate_clips", "to_unit",
           "from_unit"]


@dataclass
class Utterance:
    """One recording: frames uint8 (F,H,W) at ``fps``; wav float32 (S,) in [-1,1] at 16 kHz; text or None."""

    name: str
    frames: np.ndarray
    wav: np.ndarray
    fps: float
    text: str | None = None

    @property
    def speaker(self) -> str:
        return speaker_of(self.name)


def read_transcript(media: Path, suffix: str = ".txt") -> str | None:
    """First non-empty line of ``media.with_suffix(suffix)``, or None when there is no such file."""
    p = media.with_suffix(suffix)
    if not p.is_file():
        return None
    lines = [s.strip() for s in p.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip()]
    return lines[0] if lines else None


def _crop(frames: np.ndarray, box: tuple[int, ...], path: Path) -> np.ndarray:
    """uint8 (F,H,W) -> (F,h,w) inside ``box`` = (x, y, w, h) px; InputError when it leaves the frame."""
    if not box:
        return frames
    x, y, w, h = box
    H, W = frames.shape[1:]
    if x + w > W or y + h > H:
        raise InputError(f"{path}: data.video_crop_px {list(box)} leaves the {W}x{H} frame; give x+width <= {W} "
                         f"and y+height <= {H}")
    return frames[:, y:y + h, x:x + w]  # (F,H,W)->(F,h,w)


def load_utterance(path: Path, cfg: DataConfig, name: str | None = None) -> Utterance:
    """Read one UltraSuite/TaL ``.ult`` (with .param, .wav) or UTI video into an :class:`Utterance`.

    name: the item name (default: the file stem).
    """
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
        return Utterance(name or path.stem, frames, wav, fps, text)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from a2v.video import probe, read_frames

        info = probe(path)
        fps = cfg.fps or float(info.fps)
        gray = [f.mean(axis=2).round().astype(np.uint8) for f in read_frames(path, fps=fps)]  # F x (H,W)
        if not gray:
            raise InputError(f"{path}: no video frames could be decoded; re-encode the file (e.g. with ffmpeg)")
        frames = _crop(np.stack(gray), cfg.video_crop_px, path)  # (F,H,W)->(F,h,w)
        wav = load_audio(path, sr=cfg.sample_rate_hz)  # (S,)
        return Utterance(name or path.stem, frames, wav, fps, text)
    raise InputError(f"{path}: not an ultrasound (.ult) or video file")


def align_to_reference(wav: np.ndarray, reference: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut speech the way a reference recording is synchronised; returns (wav float32 (S',), frames uint8 (F,H,W)).

    ``wav``: the speech to generate from, float32 (S,) at ``cfg.sample_rate_hz``, starting where
    the reference's audio starts (its own ``.wav``). A ``.ult`` reference is synchronised by
    :func:`load_utterance` (a positive TimeInSecsOfFirstFrame cuts its audio start, a negative
    one its first frames); the same audio cut is applied to ``wav`` so that the generated video
    and the reference show the same instant in each frame. Videos carry no offset.
    """
    ref = load_utterance(reference, cfg)
    if reference.suffix.lower() == ".ult" and cfg.sync:
        offset = read_param(reference.with_suffix(".param")).TimeInSecsOfFirstFrame
        a0 = max(0, round(offset * cfg.sample_rate_hz))
        if a0 >= len(wav):
            raise InputError(f"{reference}: its {offset:.3f} s sync offset is longer than the speech "
                             f"({len(wav) / cfg.sample_rate_hz:.3f} s)")
        wav = wav[a0:]  # (S,)->(S-a0,)
    return wav, ref.frames


def prepare_folder(inputs: list[Path], output: Path, cfg: DataConfig, size_px: int, num_shards: int = 1,
                   shard_index: int = -1, progress: bool = True) -> dict[str, Any]:
    """Convert inputs to ``output`` (see module docstring); this worker takes every ``num_shards``-th input.

    Bad inputs are listed in ``dropped.jsonl`` with the reason (never dropped silently), files
    not taken as inputs in ``skipped.jsonl``; ``split.json`` holds the train / test names
    (:func:`split_names` with ``cfg``; written by the single worker only). Returns the report
    {"inputs", "written", "dropped", "skipped", ...} (also ``report.json``).
    """
    from tqdm.auto import tqdm

    files, skipped = scan_inputs(inputs, cfg.videos)
    if not files:
        raise InputError(f"no .ult or ultrasound video files under {', '.join(map(str, inputs))}"
                         + (f" ({len(skipped)} files skipped, e.g. {skipped[0]['path']}: {skipped[0]['reason']})"
                            if skipped else ""))
    if num_shards > 1 and shard_index >= 0:
        files = files[shard_index::num_shards]
    items_dir = output / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    manifest, dropped, texts = [], [], []
    for f, name in tqdm(files, desc="prepare tongue", unit="file", disable=not progress):
        try:
            u = load_utterance(f, cfg, name)
        except A2VError as e:
            dropped.append({"path": str(f), "reason": str(e)})
            continue
        frames = resize_frames(u.frames, size_px)  # (F,H,W)->(F,S,S)
        (items_dir / u.name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(items_dir / f"{u.name}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, frames=frames, wav=u.wav.astype(np.float32), fps=np.float64(u.fps),
                         text=np.str_(u.text or ""))
        texts.append(u.text or "")
        manifest.append({"name": u.name, "speaker": u.speaker, "source": str(f), "n_frames": int(len(frames)), "fps": u.fps,
                         "duration_s": len(u.wav) / cfg.sample_rate_hz, "has_text": u.text is not None})
    tag = f".{shard_index:04d}" if num_shards > 1 and shard_index >= 0 else ""
    write_text_atomic(output / f"manifest{tag}.jsonl", "".join(json.dumps(m) + "\n" for m in manifest))
    write_text_atomic(output / f"dropped{tag}.jsonl", "".join(json.dumps(d) + "\n" for d in dropped))
    write_text_atomic(output / f"skipped{tag}.jsonl", "".join(json.dumps(d) + "\n" for d in skipped))
    report = {"inputs": len(files), "written": len(manifest), "dropped": len(dropped), "skipped": len(skipped),
              "size_px": size_px, "view": cfg.view, "fps": cfg.fps,
              "speakers": len({m["speaker"] for m in manifest}), "language": transcript_language(texts)}
    if not tag and manifest:
        train, test = split_names([m["name"] for m in manifest], cfg)
        write_json_atomic(output / "split.json", {"by": cfg.split_by, "train": train, "test": test})
        report["split"] = {"by": cfg.split_by, "train": len(train), "test": len(test)}
    write_json_atomic(output / f"report{tag}.json", report)
    return report


def load_prepared(folder: Path, names: list[str] | None = None) -> list[Utterance]:
    """Utterances of a prepared folder (all, or ``names``), sorted by name (``items/<name>.npz``)."""
    root = Path(folder) / "items"
    items = sorted(root.rglob("*.npz"))
    if not items:
        raise InputError(f"{folder} holds no prepared items (items/*.npz): run `a2v prepare tongue -i ... -o {folder}`")
    out = []
    wanted = set(names) if names is not None else None
    for p in items:
        name = p.relative_to(root).with_suffix("").as_posix()
        if wanted is not None and name not in wanted:
            continue
        with np.load(p) as z:
            text = str(z["text"]) or None
            out.append(Utterance(name, z["frames"], z["wav"], float(z["fps"]), text))
    return sorted(out, key=lambda u: u.name)


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
