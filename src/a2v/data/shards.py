"""Sharded streaming dataset on disk: WebDataset tar shards + a JSON-lines manifest.

Layout of a prepared dataset folder ``DIR``::

    DIR/manifest.jsonl        one line per finished item {"id", "source", "shard", "n_frames", "fps",
                              "duration_s", "audio_sr"}; names only items inside complete shards
    DIR/dropped.jsonl         one line per dropped item {"id", "source", "reason", "detail"}
    DIR/prepare_config.json   the resolved preparation config
    DIR/report.json           counts: total, kept, dropped (by reason), seconds
    DIR/shards/<worker>-<k:05d>.tar   WebDataset tars: members ``<id>.<name>`` (audio.npy, meta.json...)

A shard is written to ``<name>.tar.tmp`` and renamed when it closes; only then are its items
appended to the manifest, so the manifest never names an item outside a complete shard.
Member values: ``np.ndarray`` -> ``.npy``; ``dict``/``list`` -> ``.json``; ``bytes``; ``Path`` (a file
streamed from disk, e.g. an encoded ``crop.mp4``). The tars read with ``webdataset.WebDataset``
(:func:`shard_paths`) or with :func:`iter_items` here.

Written with the standard ``tarfile`` rather than ``webdataset.TarWriter``: a ``Path`` member is
streamed from disk, so a long video's encoded crops never sit in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import InputError

MANIFEST = "manifest.jsonl"
DROPPED = "dropped.jsonl"
CONFIG = "prepare_config.json"
REPORT = "report.json"
SHARDS = "shards"
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")  # WebDataset splits key from member name at the first dot


def check_key(key: str) -> str:
    """A sample key usable in a WebDataset tar (letters, digits, ``_`` and ``-``); returns it."""
    if not _KEY_RE.match(key):
        raise ValueError(f"sample key {key!r} must hold only letters, digits, '_' and '-' (no dots, no '/')")
    return key


def encode_member(value: Any) -> bytes | Path:
    """Bytes of one sample member: array -> .npy bytes, dict/list -> UTF-8 JSON, bytes as is, Path kept."""
    if isinstance(value, Path):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return buf.getvalue()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True).encode("utf-8")
    raise TypeError(f"sample member of type {type(value).__name__}: give an ndarray, dict, bytes or Path")


def decode_member(name: str, data: bytes) -> Any:
    """Inverse of :func:`encode_member` by member name: ``*.npy`` -> ndarray, ``*.json`` -> dict, else bytes."""
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    if name.endswith(".json"):
        return json.loads(data.decode("utf-8"))
    return data


class ShardWriter:
    """Append samples to ``DIR/shards/<worker>-<k:05d>.tar``; a shard closes after ``max_items`` items
    or ``max_mb`` MB, is renamed from ``.tar.tmp`` and then reported through ``on_close``.

    on_close(shard_relpath, keys): called after each rename with the shard path relative to DIR
    (``shards/0000-00003.tar``) and the sample keys it holds, in order.
    Stale ``<worker>-*.tar.tmp`` files (a killed earlier run of the same worker) are removed on
    creation; new shards continue after the highest existing index. On an error inside a ``with``
    block the open shard is deleted, never renamed.
    """

    def __init__(
        self, out_dir: str | Path, worker: str, max_items: int = 100, max_mb: float = 1024.0, on_close=None
    ) -> None:  # noqa: ANN001 - callable(str, list[str])
        if max_items < 1 or max_mb <= 0:
            raise ValueError(f"shard limits must be positive, got max_items={max_items}, max_mb={max_mb}")
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / SHARDS
        self.dir.mkdir(parents=True, exist_ok=True)
        self.worker = check_key(worker)
        self.max_items, self.max_bytes = int(max_items), float(max_mb) * 2**20
        self.on_close = on_close
        for stale in self.dir.glob(f"{worker}-*.tar.tmp"):
            stale.unlink()
        done = [
            int(m.group(1))
            for p in self.dir.glob(f"{worker}-*.tar")
            if (m := re.fullmatch(rf"{re.escape(worker)}-(\d+)\.tar", p.name))
        ]
        self._next = max(done, default=-1) + 1
        self._tar: tarfile.TarFile | None = None
        self._tmp: Path | None = None
        self._final: Path | None = None
        self._keys: list[str] = []
        self._bytes = 0
        self.closed_shards: list[str] = []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self) -> None:
        self._final = self.dir / f"{self.worker}-{self._next:05d}.tar"
        self._tmp = self._final.with_name(self._final.name + ".tmp")
        self._next += 1
        self._tar = tarfile.open(self._tmp, "w", format=tarfile.USTAR_FORMAT)
        self._keys, self._bytes = [], 0

    def add(self, key: str, members: dict[str, Any]) -> None:
        """Write one sample: ``members`` maps names (``audio.npy``, ``meta.json``, ``crop.mp4``) to values."""
        check_key(key)
        if self._tar is None:
            self._open()
        mtime = time.time()
        for name in sorted(members):
            data = encode_member(members[name])
            info = tarfile.TarInfo(f"{key}.{name}")
            info.mtime, info.mode = mtime, 0o644
            if isinstance(data, Path):
                info.size = data.stat().st_size
                with data.open("rb") as f:
                    self._tar.addfile(info, f)
            else:
                info.size = len(data)
                self._tar.addfile(info, io.BytesIO(data))
            self._bytes += info.size + 512
        self._keys.append(key)
        if len(self._keys) >= self.max_items or self._bytes >= self.max_bytes:
            self.close()

    def close(self) -> None:
        """Finish the open shard (if any): flush, fsync, rename, then ``on_close``."""
        if self._tar is None:
            return
        tar, self._tar = self._tar, None
        tar.close()
        with open(self._tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self._tmp, self._final)
        rel = f"{SHARDS}/{self._final.name}"
        self.closed_shards.append(rel)
        if self.on_close is not None:
            self.on_close(rel, list(self._keys))
        self._keys = []

    def abort(self) -> None:
        """Drop the open shard: its temporary file is deleted (its items are redone on resume)."""
        if self._tar is not None:
            tar, self._tar = self._tar, None
            with contextlib.suppress(OSError):
                tar.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._keys = []


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows to a JSON-lines file in one locked, fsynced write (safe with several workers).

    A torn last line left by a killed writer is closed with a newline first (read_jsonl skips it).
    """
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    if not text:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = "\n" + text
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file ([] when absent); a torn (unparseable) line is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a killed writer: that item is redone
    return rows


def _require_dataset(path: str | Path) -> Path:
    p = Path(path)
    if not (p / MANIFEST).is_file():
        raise InputError(f"no prepared dataset in {p} (missing {MANIFEST}); run `a2v prepare <recipe>` first")
    return p


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``DIR/manifest.jsonl`` (finished items), in the order they were written."""
    return read_jsonl(_require_dataset(path) / MANIFEST)


def read_dropped(path: str | Path) -> list[dict[str, Any]]:
    """The items dropped now: the last row per id of ``DIR/dropped.jsonl`` ({"id", "source",
    "reason", "detail"}, file order), leaving out items kept by a later retry."""
    kept = {r["id"] for r in read_jsonl(Path(path) / MANIFEST)}
    last = {r["id"]: r for r in read_jsonl(Path(path) / DROPPED)}
    return [r for i, r in last.items() if i not in kept]


def shard_paths(path: str | Path) -> list[Path]:
    """Complete shards named by the manifest, sorted (for ``webdataset.WebDataset([str(p) ...])``)."""
    root = _require_dataset(path)
    return [root / s for s in sorted({r["shard"] for r in read_manifest(root)})]


def _iter_shard(path: Path, keys: set[str] | None) -> Iterator[dict[str, Any]]:
    """Samples of one tar, streamed: consecutive members sharing a key form one sample."""
    sample: dict[str, Any] = {}
    with tarfile.open(path, "r|") as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, _, name = m.name.rpartition("/")[2].partition(".")
            if sample and sample["__key__"] != key:
                yield sample
                sample = {}
            if not sample:
                sample = {"__key__": key, "__shard__": path.name}
            if keys is not None and name not in keys:
                continue
            f = tar.extractfile(m)
            sample[name] = decode_member(name, f.read())
    if sample:
        yield sample


def iter_items(path: str | Path, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the items of a prepared dataset, shard by shard, in manifest order of shards.

    Each item is a dict: ``__key__`` (the item id), ``__shard__``, and one entry per member
    (``audio.npy`` -> float32 (S,), ``meta.json`` -> dict, ``crop.mp4`` -> bytes, see
    :func:`decode_crop_video`). ``keys`` limits the decoded members (e.g. ``["audio.npy", "meta.json"]``).
    Only items listed in the manifest are yielded.
    """
    root = _require_dataset(path)
    listed = {r["id"] for r in read_manifest(root)}
    want = None if keys is None else set(keys)
    for shard in shard_paths(root):
        if not shard.is_file():
            raise InputError(f"shard {shard} named in {root / MANIFEST} is missing; re-run `a2v prepare`")
        for item in _iter_shard(shard, want):
            if item["__key__"] in listed:
                yield item


def load_items(path: str | Path, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """All items of a (small) prepared dataset in memory: ``list(iter_items(path, keys))``."""
    return list(iter_items(path, keys))


def decode_crop_video(data: bytes) -> Iterator[np.ndarray]:
    """Frames of an item's ``crop.mp4`` bytes: uint8 (S,S,3) RGB, one per video frame (target fps)."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")  # (S,S,3)
    except av.FFmpegError as e:
        raise InputError(f"cannot decode crop.mp4 bytes ({e}); the shard may be damaged") from None
