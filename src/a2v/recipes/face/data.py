"""Training data of the face recipe: (speech, face embedding) pairs and (face picture, embedding) pairs.

Sources
- a talking-face dataset from ``a2v prepare face`` (shards of ``audio.npy`` 16 kHz + ``crop.mp4``
  face crops): each clip gives its audio and ``frames_per_clip`` evenly spaced face frames;
- a folder of face pictures (png/jpg), for the decoder and the super-resolution stages.

Face embeddings are computed once (:class:`a2v.recipes.face.embedding.FaceEmbedder`) and held in
memory with the pictures; speech spectrograms are computed per item from the waveform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from a2v.errors import InputError
from a2v.recipes.face.config import AudioConfig

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def speech_input(wav: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """float32 (S,) at ``cfg.sample_rate_hz`` -> compressed STFT float32 (2,T,D): 6 s from the start,
    shorter audio repeated (598 x 257 at the paper's settings)."""
    from a2v.audio import compressed_stft

    if wav.size == 0:
        raise InputError("empty audio: the voice encoder needs speech")
    return compressed_stft(wav, cfg.sample_rate_hz, cfg.duration_s, cfg.win_ms, cfg.hop_ms, cfg.n_fft, cfg.power)


def load_speech(path: str | Path, cfg: AudioConfig) -> np.ndarray:
    """Audio file (any format PyAV reads) -> compressed STFT float32 (2,T,D)."""
    from a2v.audio import load_audio

    return speech_input(load_audio(path, cfg.sample_rate_hz), cfg)


def to_model_image(images: np.ndarray, size_px: int) -> Tensor:
    """uint8 (N,H,W,3) -> float32 (N,3,size,size) in [-1,1] (area resize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1  # (N,H,W,3)->(N,3,H,W)
    if x.shape[-1] != size_px or x.shape[-2] != size_px:
        x = torch.nn.functional.interpolate(x, size=(size_px, size_px), mode="area")  # (N,3,H,W)->(N,3,S,S)
    return x.clamp(-1, 1)


def to_uint8(x: Tensor) -> np.ndarray:
    """float (N,3,H,W) in [-1,1] -> uint8 (N,H,W,3)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


@dataclass
class FaceItems:
    """Pictures (N,H,W,3) uint8 with their clip audio (list of float32 (S,) or empty) and embeddings (N,D)."""

    images: np.ndarray
    embeddings: np.ndarray | None = None
    wavs: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count


def read_talking_faces(dataset_dir: str | Path, frames_per_clip: int = 1, size_px: int | None = None) -> FaceItems:
    """Clips of a prepared dataset -> audio + ``frames_per_clip`` evenly spaced crop frames per clip."""
    from a2v.data.shards import decode_crop_video, iter_items

    images, wavs, ids, skipped = [], [], [], {}
    for item in iter_items(dataset_dir, ["audio.npy", "crop.mp4", "meta.json"]):
        if "audio.npy" not in item or "crop.mp4" not in item:
            skipped["missing audio.npy or crop.mp4"] = skipped.get("missing audio.npy or crop.mp4", 0) + 1
            continue
        frames = list(decode_crop_video(item["crop.mp4"]))
        if not frames:
            skipped["no frames"] = skipped.get("no frames", 0) + 1
            continue
        for k in np.linspace(0, len(frames) - 1, frames_per_clip).round().astype(int):
            f = frames[k]
            if size_px is not None and f.shape[0] != size_px:
                import cv2

                f = cv2.resize(f, (size_px, size_px), interpolation=cv2.INTER_AREA)
            images.append(f)
            wavs.append(np.asarray(item["audio.npy"], np.float32))
            ids.append(f"{item['__key__']}:{k}")
    if not images:
        raise InputError(f"no usable clips in {dataset_dir} (skipped: {skipped or 'none listed'})")
    return FaceItems(np.stack(images), None, wavs, ids, skipped)


def read_image_folder(folder: str | Path, size_px: int | None = None) -> FaceItems:
    """Face pictures of a folder (recursive) -> uint8 (N,S,S,3); unreadable files are counted, not hidden."""
    import cv2

    from a2v.video import load_image

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    images, ids, skipped = [], [], {}
    for p in paths:
        try:
            im = load_image(p)
        except InputError:
            skipped["unreadable"] = skipped.get("unreadable", 0) + 1
            continue
        if size_px is not None:
            im = cv2.resize(im, (size_px, size_px), interpolation=cv2.INTER_AREA)
        images.append(im)
        ids.append(str(p.relative_to(root)))
    if not images:
        raise InputError(f"no face pictures ({', '.join(IMAGE_EXTS)}) in {root}")
    if size_px is None and len({im.shape for im in images}) > 1:
        raise InputError(f"pictures in {root} have different sizes: give a size to resize them")
    return FaceItems(np.stack(images), None, [], ids, skipped)


def read_faces(path: str | Path, frames_per_clip: int = 1, size_px: int | None = None) -> FaceItems:
    """A prepared talking-face dataset (has manifest.jsonl) or a folder of face pictures."""
    p = Path(path)
    if (p / "manifest.jsonl").is_file():
        return read_talking_faces(p, frames_per_clip, size_px)
    return read_image_folder(p, size_px)


class SpeechEmbeddingDataset(Dataset):
    """Voice-encoder pairs: ``{"spec": float32 (2,T,D), "emb": float32 (D,)}``."""

    def __init__(self, wavs: list[np.ndarray], embeddings: np.ndarray, cfg: AudioConfig) -> None:
        if len(wavs) != len(embeddings):
            raise InputError(f"{len(wavs)} audio clips but {len(embeddings)} face embeddings")
        self.wavs, self.emb, self.cfg = wavs, torch.as_tensor(embeddings, dtype=torch.float32), cfg

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"spec": torch.from_numpy(speech_input(self.wavs[i], self.cfg)), "emb": self.emb[i]}


class ImageEmbeddingDataset(Dataset):
    """Decoder / super-resolution items: ``{"image": float32 (3,S,S) in [-1,1], "emb": (D,)}`` (emb if given)."""

    def __init__(self, images: np.ndarray, size_px: int, embeddings: np.ndarray | None = None) -> None:
        self.images = to_model_image(images, size_px)  # (N,3,S,S)
        self.emb = None if embeddings is None else torch.as_tensor(embeddings, dtype=torch.float32)
        if self.emb is not None and len(self.emb) != len(self.images):
            raise InputError(f"{len(self.images)} pictures but {len(self.emb)} embeddings")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        out = {"image": self.images[i]}
        if self.emb is not None:
            out["emb"] = self.emb[i]
        return out
