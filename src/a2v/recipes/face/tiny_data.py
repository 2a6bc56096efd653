"""``a2v face tiny-data``: the face recipe's tiny task, made offline (no download, no recordings).

Speakers = the first ``n_speakers`` faces of scikit-image's LFW subset (grey 25x25 px, enlarged to
``crop_size_px``), each paired with its own eSpeak NG voice (:func:`a2v.audio.tts.synthesize_speech`),
speaking ``n_sentences`` short GRID-style sentences. Written in the exact layout of
``a2v prepare face`` (``manifest.jsonl`` + ``shards/*.tar`` with ``audio.npy`` float32 16 kHz,
``crop.mp4`` face crops, ``meta.json``), in two folders:

- ``DIR/train``: all sentences but the last of every speaker (the three stages train on it);
- ``DIR/test``: the last sentence of every speaker (unseen speech of seen speakers, for
  ``a2v face evaluate``); the same speech as ``DIR/voices/spk<k>.wav`` for ``a2v face generate``.

The task is small enough for a 2-core CPU: 4 faces, 4 voices; ``configs/face/tiny.yaml`` is set
for it (docs/face.md, "Tiny task"). The output folder appears whole or not at all.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import InputError

# GRID-style sentences (command, colour, preposition, letter, digit, adverb): short, distinct words
SENTENCES = (
    "bin blue at f two now",
    "lay green by a one again",
    "place red in d five soon",
    "set white with s nine please",
    "bin red at g seven now",
    "lay blue in k three again",
)
# eSpeak NG voice variants: two male, two female, then more (distinct pitch and timbre)
VOICES = ("en+m1", "en+f2", "en-us+m3", "en+f4", "en+m7", "en-gb+f5", "en+m2", "en+f1")
SAMPLE_RATE_HZ = 16000
FPS = 25.0


@dataclass(frozen=True)
class TinyDataConfig:
    """Size of the tiny task: speakers (one face + one voice each), sentences per speaker, crop size."""

    n_speakers: int = 4
    n_sentences: int = 5  # the last one of each speaker goes to test/
    crop_size_px: int = 64
    frames_per_clip: int = 5  # the face is still: identical frames (H.264, 25 fps)
    rate_wpm: int = 150

    def __post_init__(self) -> None:
        if not 2 <= self.n_speakers <= len(VOICES):
            raise InputError(f"--speakers must be in 2..{len(VOICES)} (one eSpeak voice each), got {self.n_speakers}")
        if not 2 <= self.n_sentences <= len(SENTENCES):
            raise InputError(f"--sentences must be in 2..{len(SENTENCES)}, got {self.n_sentences}")
        if self.crop_size_px < 16 or self.crop_size_px % 2:
            raise InputError(f"--size must be an even number of pixels >= 16, got {self.crop_size_px}")


def tiny_faces(n: int, size_px: int) -> np.ndarray:
    """The first ``n`` faces of scikit-image's LFW subset, grey -> RGB uint8 (n,size,size,3) (bicubic)."""
    import cv2

    try:
        import skimage.data
    except ImportError as e:
        from a2v.errors import missing_package

        raise missing_package("scikit-image", "face", "the tiny face task's LFW faces") from e
    faces = (skimage.data.lfw_subset()[:n] * 255).round().astype(np.uint8)  # (n,25,25); the first 100 are faces
    faces = np.stack([cv2.resize(f, (size_px, size_px), interpolation=cv2.INTER_CUBIC) for f in faces])
    return np.repeat(faces[..., None], 3, axis=-1)  # (n,S,S)->(n,S,S,3)


def _clip(face: np.ndarray, wav: np.ndarray, key: str, cfg: TinyDataConfig, work: Path) -> dict[str, Any]:
    """One item in ``a2v prepare face``'s member layout: audio.npy, crop.mp4, meta.json."""
    from a2v.video import write_video

    mp4 = work / f"{key}.mp4"
    write_video(mp4, [face] * cfg.frames_per_clip, fps=FPS)
    meta = {"id": key, "source": f"tiny:{key}", "fps": FPS, "n_frames": cfg.frames_per_clip,
            "width": cfg.crop_size_px, "height": cfg.crop_size_px, "duration_s": len(wav) / SAMPLE_RATE_HZ,
            "audio_sr": SAMPLE_RATE_HZ, "n_samples": int(len(wav)), "crop_size_px": cfg.crop_size_px}
    return {"audio.npy": wav.astype(np.float32), "crop.mp4": mp4, "meta.json": meta}


def _write_split(out: Path, items: list[tuple[str, np.ndarray, np.ndarray]], cfg: TinyDataConfig) -> None:
    from a2v.data.shards import MANIFEST, ShardWriter, append_jsonl

    work = out / ".work"
    work.mkdir(parents=True)
    rows: dict[str, dict[str, Any]] = {}

    def on_close(shard: str, keys: list[str]) -> None:
        append_jsonl(out / MANIFEST, [{**rows[k], "shard": shard} for k in keys])

    with ShardWriter(out, "0000", max_items=len(items), on_close=on_close) as writer:
        for key, face, wav in items:
            sample = _clip(face, wav, key, cfg, work)
            m = sample["meta.json"]
            rows[key] = {"id": key, "source": m["source"], "n_frames": m["n_frames"], "fps": m["fps"],
                         "duration_s": m["duration_s"], "audio_sr": m["audio_sr"]}
            writer.add(key, sample)
    shutil.rmtree(work)


def make_tiny_data(out_dir: str | Path, cfg: TinyDataConfig = TinyDataConfig()) -> dict[str, Any]:
    """Write ``out_dir/train`` and ``out_dir/test`` (see the module docstring); returns a summary dict.

    Refuses (InputError) an ``out_dir`` that exists and is not empty. Written into a temporary
    sibling folder first and renamed at the end: an interrupted run leaves no half dataset.
    """
    import os

    from a2v.audio.tts import synthesize_speech
    from a2v.io import write_json_atomic

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty: give a new folder for the tiny face dataset")
    faces = tiny_faces(cfg.n_speakers, cfg.crop_size_px)  # (N,S,S,3)
    splits: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for s in range(cfg.n_speakers):
        for k in range(cfg.n_sentences):
            wav = synthesize_speech(SENTENCES[k], SAMPLE_RATE_HZ, VOICES[s], cfg.rate_wpm)  # (S,) 16 kHz
            split = "test" if k == cfg.n_sentences - 1 else "train"
            splits[split].append((f"spk{s}_s{k}", faces[s], wav))
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, items in splits.items():
            _write_split(tmp / name, items, cfg)
        summary = {"speakers": [{"face": f"skimage.data.lfw_subset()[{s}]", "voice": VOICES[s]}
                                for s in range(cfg.n_speakers)],
                   "train_clips": len(splits["train"]), "test_clips": len(splits["test"]),
                   "sentences": list(SENTENCES[:cfg.n_sentences]), "crop_size_px": cfg.crop_size_px,
                   "audio_sr": SAMPLE_RATE_HZ}
        from a2v.audio import save_audio

        (tmp / "voices").mkdir()
        for key, _, wav in splits["test"]:  # the held-out sentence of each speaker, for `a2v face generate`
            save_audio(tmp / "voices" / f"{key.split('_')[0]}.wav", wav, SAMPLE_RATE_HZ)
        write_json_atomic(tmp / "tiny_data.json", summary)
        if out.exists():
            out.rmdir()  # empty (checked above)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
