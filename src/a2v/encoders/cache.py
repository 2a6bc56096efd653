"""On-disk cache of per-file features (encoder outputs), keyed by content, model and settings.

Key = sha256 over (sha256 of the file bytes, model id, layer, extra parameters as sorted
JSON), so renaming a file keeps its entry and editing it (or changing the model, layer or
a parameter) makes a new one. Arrays are stored as ``<root>/<k[:2]>/<k>.npy``, written
atomically. Default root: ``$A2V_CACHE_DIR`` or ``~/.cache/a2v/features``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import require_file
from a2v.io import atomic_path

_CHUNK_BYTES = 1 << 20


def default_cache_dir() -> Path:
    """``$A2V_CACHE_DIR`` when set, else ``~/.cache/a2v/features`` (read at call time)."""
    env = os.environ.get("A2V_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "a2v" / "features"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK_BYTES):
            h.update(block)
    return h.hexdigest()


class FeatureCache:
    """``get_or_compute(audio_path, model_id, layer, fn, extra) -> np.ndarray`` backed by .npy files.

    File hashes are remembered per (path, size, mtime) within the process, so a file is read
    once per run. ``hits`` and ``misses`` count look-ups.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._hashes: dict[tuple[str, int, int], str] = {}

    def _file_hash(self, path: Path) -> str:
        st = path.stat()
        k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if k not in self._hashes:
            self._hashes[k] = file_sha256(path)
        return self._hashes[k]

    def key(
        self, audio_path: str | os.PathLike, model_id: str, layer: str | int, extra: dict[str, Any] | None = None
    ) -> str:
        """Hex key of (file content, model id, layer, extra parameters)."""
        p = require_file(audio_path, "audio file")
        blob = json.dumps(
            {"file": self._file_hash(p), "model": str(model_id), "layer": str(layer), "extra": extra or {}},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get_or_compute(
        self,
        audio_path: str | os.PathLike,
        model_id: str,
        layer: str | int,
        fn: Callable[[], Any],
        extra: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """The cached array for this key, or ``np.asarray(fn())`` stored then returned.

        ``fn`` takes no argument and returns an array (numpy, or a torch tensor on any device).
        A cache file that cannot be read (truncated by a crash of another writer) is recomputed.
        """
        path = self.path_for(self.key(audio_path, model_id, layer, extra))
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                arr = None  # unreadable entry: overwritten below
            if arr is not None:
                self.hits += 1
                return arr
        self.misses += 1
        value = fn()
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        return arr
