"""Stage 1 data: prepared clips -> (MFCC 100 Hz, mouth PCA 25 fps) sequences -> training windows.

Zheng et al. 2020, §3.1/§4.1: 13-D MFCC at 100 Hz in, 10-D PCA of the mouth landmarks at 25 fps
out; training windows of 200 audio frames <-> 50 video frames.

Mouth features, per frame: the 20 mouth points normalised for head pose
(:func:`a2v.face.mouth.normalize_mouth`: roll removed, relative to the nose, divided by the
eye distance), flattened to 40 values. **Per-speaker normalised PCA**: each speaker's features
are standardised, ``z = (m - mean_s) / std_s`` with ``mean_s`` the speaker's mean mouth (40,)
and ``std_s`` one scalar (the RMS of the speaker's deviations over all 40 values, so the
covariance of the motion keeps its shape); the PCA (10 components) is fitted on the training
speakers' ``z``. A held-out or new speaker is standardised with its own statistics (from its
template video); a single photo has no motion statistics and gets the median training std.

Items come from a dataset written by ``a2v prepare lipsync`` (``manifest.jsonl`` + WebDataset
tars, see :func:`read_items`) or from videos directly (:func:`item_from_video`).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from a2v.errors import InputError
from a2v.face.mouth import MouthPCA, normalize_mouth
from a2v.recipes.lipsync.config import LipSyncDataConfig

__all__ = [
    "LipSyncItem",
    "read_items",
    "item_from_video",
    "load_items",
    "VIDEO_EXTS",
    "split_items",
    "SpeakerStats",
    "MouthFeatures",
    "EncodedClip",
    "WindowDataset",
]

_MEMBERS = ("mfcc.npy", "landmarks.npy", "meta.json")
VIDEO_EXTS = (".mp4", ".mpg", ".mpeg", ".mov", ".mkv", ".avi", ".webm")


@dataclass
class LipSyncItem:
    """One clip: mfcc float32 (T,13) at 100 Hz; landmarks float32 (F,68,2) frame px at 25 fps, NaN rows = no face."""

    id: str
    speaker: str
    mfcc: np.ndarray
    landmarks: np.ndarray
    fps: float = 25.0


def _speaker(entry: dict, key: str) -> str:
    if key == "all":
        return "all"
    if key == "source_dir":
        return str(Path(str(entry.get("source", entry["id"]))).parent)
    return str(entry["id"])


def _read_manifest(data_dir: Path) -> list[dict]:
    path = data_dir / "manifest.jsonl"
    if not path.is_file():
        raise InputError(f"no manifest.jsonl in {data_dir}: make the dataset with 'a2v prepare lipsync'")
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path} line {n} is not JSON ({e.msg}): re-run 'a2v prepare lipsync'") from None
    return entries


def _iter_tar(path: Path, wanted: set[str]) -> Iterable[tuple[str, dict[str, bytes]]]:
    """WebDataset tar -> (key, {member: bytes}) for the wanted keys (key = name before the first dot)."""
    # a few lines of tarfile rather than the webdataset package: only reading, no pipelines
    sample: dict[str, bytes] = {}
    key = None
    try:
        with tarfile.open(path, "r") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                k, _, member = base.partition(".")
                k = m.name[: len(m.name) - len(base)] + k
                if k != key:
                    if key is not None and key in wanted:
                        yield key, sample
                    key, sample = k, {}
                if k in wanted and member in _MEMBERS:
                    sample[member] = tar.extractfile(m).read()
            if key is not None and key in wanted:
                yield key, sample
    except tarfile.TarError as e:
        raise InputError(f"broken shard {path} ({e}): re-run 'a2v prepare lipsync'") from None


def read_items(
    data_dir: str | Path, speaker_key: str = "item", ids: Sequence[str] | None = None, progress: bool = False
) -> list[LipSyncItem]:
    """Items of a prepared dataset ``DIR/manifest.jsonl`` + ``DIR/shards/*.tar`` (those in ``ids`` if given).

    Reads ``mfcc.npy`` (T,13) 100 Hz, ``landmarks.npy`` (F,68,2) px and ``meta.json`` of each
    sample; InputError names the first item missing from its shard.
    """
    from tqdm.auto import tqdm

    data_dir = Path(data_dir)
    entries = [e for e in _read_manifest(data_dir) if ids is None or e["id"] in set(ids)]
    by_shard: dict[str, list[dict]] = {}
    for e in entries:
        by_shard.setdefault(str(e["shard"]), []).append(e)
    found: dict[str, LipSyncItem] = {}
    for shard, group in tqdm(sorted(by_shard.items()), desc="reading shards", disable=not progress):
        path = data_dir / shard if (data_dir / shard).is_file() else data_dir / "shards" / Path(shard).name
        if not path.is_file():
            raise InputError(f"shard {shard} named in {data_dir}/manifest.jsonl is missing")
        meta = {e["id"]: e for e in group}
        for key, s in _iter_tar(path, set(meta)):
            missing = [m for m in _MEMBERS if m not in s]
            if missing:
                raise InputError(f"item {key} in {path} lacks {', '.join(missing)}: re-run 'a2v prepare lipsync'")
            mfcc = np.load(io.BytesIO(s["mfcc.npy"]), allow_pickle=False).astype(np.float32)  # (T,13)
            lm = np.load(io.BytesIO(s["landmarks.npy"]), allow_pickle=False).astype(np.float32)  # (F,68,2)
            fps = float(json.loads(s["meta.json"]).get("fps", meta[key].get("fps", 25.0)))
            found[key] = LipSyncItem(key, _speaker(meta[key], speaker_key), mfcc, lm, fps)
    missing_ids = [e["id"] for e in entries if e["id"] not in found]
    if missing_ids:
        raise InputError(f"{len(missing_ids)} items of {data_dir}/manifest.jsonl are not in their shards "
                         f"(first: {missing_ids[0]}): re-run 'a2v prepare lipsync'")
    return [found[e["id"]] for e in entries]


def item_from_video(path: str | Path, detector, landmarker, track_cfg=None, speaker: str | None = None) -> LipSyncItem:
    """Build an item straight from a short talking-face video: MFCC of its audio + dlib landmarks at 25 fps.

    ``detector``: an a2v.face detector; ``landmarker``: :class:`a2v.face.DlibLandmarker`;
    ``track_cfg``: :class:`a2v.face.TrackConfig` (strict: one face; InputError when dropped).
    The whole clip is held in memory (``a2v.video.read_video``): meant for small experiments;
    long videos go through ``a2v prepare lipsync``.
    """
    from a2v.audio import load_audio, mfcc
    from a2v.face import TrackConfig, track_strict
    from a2v.video import read_video

    p = Path(path)
    frames, fps = read_video(p, fps=25.0)  # (F,H,W,3) at 25 fps
    res = track_strict(frames, detector, track_cfg or TrackConfig(detect_every_frames=10, min_face_px=64))
    if res.track is None:
        raise InputError(f"{p}: no usable face track ({res.dropped})")
    lm = landmarker.track(frames, res.track.boxes)  # (F,68,2)
    feats = mfcc(load_audio(p, 16000), 16000)  # (S,)->(T,13)
    return LipSyncItem(p.stem, speaker or p.stem, feats, lm.astype(np.float32), fps)


def _video_speaker(path: Path, key: str) -> str:
    return "all" if key == "all" else (path.parent.name if key == "source_dir" else path.stem)


def load_items(
    data_dir: str | Path,
    cfg: LipSyncDataConfig,
    ids: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> list[LipSyncItem]:
    """Items of a prepared dataset (``manifest.jsonl``) or of a folder of videos (``VIDEO_EXTS``, sorted).

    Videos: face track (``cfg.video_detector``, one face >= ``cfg.video_min_face_px``) + dlib
    landmarks + MFCC per clip, cached as ``cache_dir/<stem>.npz`` when ``cache_dir`` is given.
    A clip without a usable face track raises InputError naming it. ``ids``: item ids (file stems).
    """
    from tqdm.auto import tqdm

    root = Path(data_dir)
    if (root / "manifest.jsonl").is_file():
        return read_items(root, cfg.speaker_key, ids, progress)
    if not root.is_dir():
        raise InputError(f"data folder {root} does not exist: give a dataset from 'a2v prepare lipsync' or videos")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file())
    if ids is not None:
        paths = [p for p in paths if p.stem in set(ids)]
    if not paths:
        raise InputError(f"{root} has no manifest.jsonl and no videos ({', '.join(VIDEO_EXTS)})")
    detector = landmarker = None
    items = []
    for p in tqdm(paths, desc="videos -> landmarks", disable=not progress, unit="clip"):
        cache = Path(cache_dir) / f"{p.stem}.npz" if cache_dir is not None else None
        if cache is not None and cache.is_file():
            with np.load(cache, allow_pickle=False) as z:
                it = LipSyncItem(p.stem, _video_speaker(p, cfg.speaker_key), z["mfcc"], z["landmarks"], float(z["fps"]))
        else:
            if detector is None:
                from a2v.face import DlibLandmarker, make_detector

                detector = make_detector(cfg.video_detector, min_size_px=cfg.video_min_face_px)
                landmarker = DlibLandmarker()
            from a2v.face import TrackConfig

            tcfg = TrackConfig(detect_every_frames=10, min_face_px=cfg.video_min_face_px)
            it = item_from_video(p, detector, landmarker, tcfg, _video_speaker(p, cfg.speaker_key))
            if cache is not None:
                from a2v.io import atomic_path

                cache.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                    np.savez(f, mfcc=it.mfcc, landmarks=it.landmarks, fps=np.float64(it.fps))
        items.append(it)
    return items


def split_items(items: Sequence[LipSyncItem], cfg: LipSyncDataConfig) -> tuple[list, list]:
    """(train, holdout): ``cfg.holdout_ids`` if given, else items whose id hash falls below ``holdout_fraction``.

    With 2+ items and a fraction > 0 at least one item is held out (the one with the lowest hash).
    """
    if cfg.holdout_ids:
        unknown = set(cfg.holdout_ids) - {it.id for it in items}
        if unknown:
            raise InputError(f"data.holdout_ids names items not in the dataset: {sorted(unknown)[:3]}")
        held = set(cfg.holdout_ids)
    else:
        h = {it.id: int(hashlib.sha1(it.id.encode()).hexdigest()[:8], 16) / 16**8 for it in items}
        held = {i for i, v in h.items() if v < cfg.holdout_fraction}
        if not held and len(items) >= 2 and cfg.holdout_fraction > 0:
            held = {min(h, key=h.get)}
    return [it for it in items if it.id not in held], [it for it in items if it.id in held]


@dataclass(frozen=True)
class SpeakerStats:
    """One speaker's normalised-mouth statistics: mean float64 (40,), std scalar (normalised units)."""

    mean: np.ndarray
    std: float

    def to_dict(self) -> dict:
        return {"mean": np.asarray(self.mean).tolist(), "std": float(self.std)}

    @staticmethod
    def from_dict(d: dict) -> SpeakerStats:
        return SpeakerStats(np.asarray(d["mean"], np.float64), float(d["std"]))


@dataclass
class EncodedClip:
    """One item encoded for the model: mfcc float32 (4F,13) 100 Hz; mouth float32 (F,10) 25 fps, NaN rows = no face."""

    id: str
    mfcc: np.ndarray
    mouth: np.ndarray


def _flat_mouth(lm: np.ndarray) -> np.ndarray:
    m, _ = normalize_mouth(lm)  # (F,68,2)->(F,20,2)
    return m.reshape(len(m), 40).astype(np.float64)  # (F,20,2)->(F,40)


class MouthFeatures:
    """MFCC standardisation + per-speaker mouth standardisation + mouth PCA, fitted on training items."""

    def __init__(self, cfg: LipSyncDataConfig) -> None:
        self.cfg = cfg
        self.mfcc_mean = np.zeros(cfg.mfcc_dim, np.float32)
        self.mfcc_std = np.ones(cfg.mfcc_dim, np.float32)
        self.pca = MouthPCA(cfg.pca_components)
        self.speakers: dict[str, SpeakerStats] = {}
        self.default_std = 1.0

    # --- statistics -------------------------------------------------------------------------
    @staticmethod
    def _raw_stats(mouth_flat: np.ndarray) -> tuple[np.ndarray, float]:
        x = mouth_flat[~np.isnan(mouth_flat).any(axis=1)]  # (F',40)
        if len(x) == 0:
            raise InputError("speaker statistics need at least one frame with a face")
        mean = x.mean(axis=0)
        return mean, float(np.sqrt(((x - mean) ** 2).mean())) if len(x) > 1 else 0.0

    def speaker_stats(self, mouth_flat: np.ndarray) -> SpeakerStats:
        """Stats of one speaker's normalised mouths (F,40) (NaN rows skipped); a still face gets ``default_std``."""
        if not self.cfg.speaker_norm:
            return SpeakerStats(np.zeros(40), 1.0)
        mean, std = self._raw_stats(mouth_flat)
        return SpeakerStats(mean, std if std > self.cfg.min_std else self.default_std)

    def template_stats(self, landmarks: np.ndarray) -> SpeakerStats:
        """Stats of a template: landmarks (68,2) or (F,68,2); a still face gets the median training std."""
        flat = _flat_mouth(np.asarray(landmarks).reshape(-1, 68, 2))  # (F,40)
        return self.speaker_stats(flat)

    def fit(self, items: Sequence[LipSyncItem]) -> MouthFeatures:
        """Fit MFCC stats, per-speaker stats and the PCA on training items; returns self."""
        if not items:
            raise InputError("no training items: the dataset (minus the held-out items) is empty")
        if self.cfg.mfcc_norm:
            allm = np.concatenate([it.mfcc for it in items])  # (sum T,13)
            self.mfcc_mean, self.mfcc_std = allm.mean(0), np.maximum(allm.std(0), 1e-6)
        flats = {it.id: _flat_mouth(it.landmarks) for it in items}  # id -> (F,40)
        by_spk: dict[str, list[np.ndarray]] = {}
        for it in items:
            by_spk.setdefault(it.speaker, []).append(flats[it.id])
        if self.cfg.speaker_norm:
            stds = [self._raw_stats(np.concatenate(v))[1] for v in by_spk.values()]
            moving = [s for s in stds if s > self.cfg.min_std]
            self.default_std = float(np.median(moving)) if moving else 1.0
        self.speakers = {s: self.speaker_stats(np.concatenate(v)) for s, v in by_spk.items()}
        z = np.concatenate([self._standardise(flats[it.id], self.speakers[it.speaker]) for it in items])  # (N,40)
        self.pca.fit(z.reshape(-1, 20, 2))  # (N,40)->(N,20,2)
        return self

    def _standardise(self, flat: np.ndarray, st: SpeakerStats) -> np.ndarray:
        return (flat - st.mean) / st.std  # (F,40)

    # --- encoding / decoding ----------------------------------------------------------------
    def mfcc_input(self, mfcc: np.ndarray, n_frames: int) -> np.ndarray:
        """mfcc (T,13) 100 Hz -> float32 (4F,13) standardised, cropped or edge-padded to 4 x ``n_frames``."""
        if mfcc.ndim != 2 or mfcc.shape[1] != self.cfg.mfcc_dim or len(mfcc) == 0:
            raise InputError(f"MFCC must be (T,{self.cfg.mfcc_dim}) with T > 0, got {mfcc.shape}")
        x = (mfcc - self.mfcc_mean) / self.mfcc_std  # (T,13)
        t = 4 * n_frames
        x = x[:t] if len(x) >= t else np.pad(x, ((0, t - len(x)), (0, 0)), mode="edge")  # (T,13)->(4F,13)
        return x.astype(np.float32)

    def encode_mouth(self, landmarks: np.ndarray, stats: SpeakerStats) -> np.ndarray:
        """landmarks (F,68,2) px -> mouth PCA float32 (F,10); NaN rows where there is no face."""
        flat = _flat_mouth(landmarks)  # (F,40)
        z = self._standardise(flat, stats)  # (F,40)
        out = np.full((len(z), self.cfg.pca_components), np.nan, np.float32)
        ok = ~np.isnan(z).any(axis=1)
        if ok.any():
            out[ok] = self.pca.transform(z[ok].reshape(-1, 20, 2))  # (F',20,2)->(F',10)
        return out

    def decode_mouth(self, coeffs: np.ndarray, stats: SpeakerStats) -> np.ndarray:
        """mouth PCA (F,10) -> normalised mouth float32 (F,20,2) of the speaker with ``stats``."""
        z = self.pca.inverse_transform(coeffs).reshape(-1, 40)  # (F,10)->(F,40)
        return (z * stats.std + stats.mean).reshape(-1, 20, 2).astype(np.float32)  # (F,40)->(F,20,2)

    def encode(self, items: Sequence[LipSyncItem], stats: dict[str, SpeakerStats] | None = None) -> list[EncodedClip]:
        """Items -> sequences. Speaker stats from ``stats``, else the fitted ones for training
        speakers and, for a new speaker, computed from that speaker's given items."""
        if stats is None:
            by_spk: dict[str, list[np.ndarray]] = {}
            for it in items:
                if it.speaker not in self.speakers:
                    by_spk.setdefault(it.speaker, []).append(_flat_mouth(it.landmarks))
            stats = {**self.speakers, **{s: self.speaker_stats(np.concatenate(v)) for s, v in by_spk.items()}}
        out = []
        for it in items:
            n = len(it.landmarks)
            out.append(EncodedClip(it.id, self.mfcc_input(it.mfcc, n), self.encode_mouth(it.landmarks, stats[it.speaker])))
        return out

    # --- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "a2v.lipsync_features/1",
            "mfcc_mean": self.mfcc_mean.tolist(),
            "mfcc_std": self.mfcc_std.tolist(),
            "pca": self.pca.to_dict(),
            "speakers": {k: v.to_dict() for k, v in self.speakers.items()},
            "default_std": self.default_std,
        }

    @staticmethod
    def from_dict(d: dict, cfg: LipSyncDataConfig) -> MouthFeatures:
        f = MouthFeatures(cfg)
        f.mfcc_mean = np.asarray(d["mfcc_mean"], np.float32)
        f.mfcc_std = np.asarray(d["mfcc_std"], np.float32)
        p = d["pca"]
        f.pca = MouthPCA(int(p["n_components"]))
        f.pca.mean_ = np.asarray(p["mean"], np.float64)
        f.pca.components_ = np.asarray(p["components"], np.float64)
        f.pca.explained_variance_ = np.asarray(p["explained_variance"], np.float64)
        f.pca.explained_variance_ratio_ = np.asarray(p["explained_variance_ratio"], np.float64)
        f.pca.n_samples_ = int(p.get("n_samples", 0))
        f.speakers = {k: SpeakerStats.from_dict(v) for k, v in d.get("speakers", {}).items()}
        f.default_std = float(d.get("default_std", 1.0))
        return f


class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``window_video_frames`` (W) video frames and 4W audio frames over sequences.

    Window starts: 0, hop, 2 hop, ... while the window fits (training: hop 1 = every offset, the
    loop shuffles them; evaluation: hop = W, sequential). Windows with a frame without a face are
    left out and counted in ``n_dropped``; sequences shorter than W in ``short_ids``.
    Item: {"mfcc": float32 (4W,13), "mouth": float32 (W,10), "seq": int, "start": int (video frame)}.
    """

    def __init__(self, seqs: Sequence[EncodedClip], window_video_frames: int, hop_video_frames: int) -> None:
        self.seqs, self.w = list(seqs), int(window_video_frames)
        self.index: list[tuple[int, int]] = []
        self.n_dropped = 0
        self.short_ids: list[str] = []
        for i, s in enumerate(self.seqs):
            n = len(s.mouth)
            if n < self.w:
                self.short_ids.append(s.id)
                continue
            bad = np.isnan(s.mouth).any(axis=1).astype(np.int64)  # (F,)
            cum = np.concatenate([[0], np.cumsum(bad)])  # (F+1,)
            for start in range(0, n - self.w + 1, hop_video_frames):
                if cum[start + self.w] - cum[start]:
                    self.n_dropped += 1
                else:
                    self.index.append((i, start))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, f0 = self.index[k]
        s = self.seqs[i]
        return {
            "mfcc": torch.from_numpy(s.mfcc[4 * f0 : 4 * (f0 + self.w)]),  # (4W,13)
            "mouth": torch.from_numpy(s.mouth[f0 : f0 + self.w]),  # (W,10)
            "seq": i,
            "start": f0,
        }

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows stacked: mfcc (N,4W,13), mouth (N,W,10)."""
        if not self.index:
            return np.zeros((0, 4 * self.w, 13), np.float32), np.zeros((0, self.w, 0), np.float32)
        items = [self[k] for k in range(len(self))]
        return np.stack([b["mfcc"].numpy() for b in items]), np.stack([b["mouth"].numpy() for b in items])
