"""Find pretrained Hugging Face models on disk without touching the network.

A model is given by a local folder (``/models/wav2vec2-base``) or a hub id
(``facebook/wav2vec2-base``). Hub ids are looked up in the Hugging Face cache first; a
download is tried only when allowed (``allow_download=True``, or ``None`` with
``$HF_HUB_OFFLINE`` unset and the hub answering a 2-second connection probe), so an
offline machine gets :class:`MissingWeightsError` at once instead of minutes of retries.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from a2v.errors import MissingWeightsError

# Models the recipes use by default (role -> hub id).
DEFAULT_MODELS: dict[str, str] = {
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-xlsr-53": "facebook/wav2vec2-large-xlsr-53",
    "wavlm-base-plus": "microsoft/wavlm-base-plus",
    "bert-base-chinese": "bert-base-chinese",
    "whisper-small": "openai/whisper-small",
}

# Hub ids renamed upstream: the cache may hold either spelling.
_ALIASES: dict[str, tuple[str, ...]] = {"bert-base-chinese": ("google-bert/bert-base-chinese",)}

_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when ``$HF_HUB_OFFLINE`` (or ``$TRANSFORMERS_OFFLINE``) asks for no network, read at call time."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether a TCP connection to the hub endpoint (``$HF_ENDPOINT``) opens within ``timeout_s`` seconds."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def cached_snapshot(repo_id: str) -> Path | None:
    """Folder of a cached snapshot of ``repo_id`` (or a known alias) holding config.json, or None."""
    from a2v.metrics.weights import hf_cached_snapshot

    for rid in (repo_id, *_ALIASES.get(repo_id, ())):
        snap = hf_cached_snapshot(rid, "config.json")
        if snap is not None:
            return snap
    return None


def local_model_dir(name_or_path: str | os.PathLike) -> Path | None:
    """The on-disk folder for a model folder path or a cached hub id, or None when not on disk."""
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return p
    name = str(name_or_path)
    if _looks_like_path(name) or p.exists():
        return None
    return cached_snapshot(name)


def resolve_pretrained(
    name_or_path: str | os.PathLike, what: str, set_key: str, allow_download: bool | None = None
) -> str:
    """Return what to pass to ``from_pretrained``: a local folder, or the hub id when a download is allowed.

    ``what`` names the model in the error ("speech encoder"), ``set_key`` the config key the
    user sets to a local folder ("audio.encoder"). Raises MissingWeightsError (one line)
    when the model is not on disk and no download is possible.
    """
    local = local_model_dir(name_or_path)
    if local is not None:
        return str(local)
    name = str(name_or_path)
    p = Path(name).expanduser()
    if _looks_like_path(name) or p.exists():
        why = "is not a folder with config.json" if p.exists() else "does not exist"
        raise MissingWeightsError(f"{what} weights folder {p} {why}: give the folder written by save_pretrained")
    if allow_download is None:
        allow_download = not hub_offline() and hub_reachable()
    if allow_download and not hub_offline():
        return name
    raise missing_weights(what, name, set_key)


def missing_weights(what: str, name: str, set_key: str) -> MissingWeightsError:
    """The one-line error for model ``name`` absent from disk; ``set_key`` is a config key
    ("asr.model": hint ``--set asr.model=...``) or a command-line option ("--langid-model")."""
    short = name.rstrip("/").split("/")[-1]
    hint = f"{set_key} /models/{short}" if set_key.startswith("--") else f"--set {set_key}=/models/{short}"
    return MissingWeightsError(
        f"{what} weights {name!r} not found locally (no download possible): put the model folder on disk "
        f"and pass its path, e.g. {hint}"
    )


def model_fingerprint(folder: str | os.PathLike) -> str:
    """Short hash of a model folder's config.json and weight file names and sizes (for cache keys)."""
    root = Path(folder)
    h = hashlib.sha256()
    cfg = root / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(root.iterdir()) if root.is_dir() else []:
        if f.suffix in {".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5"}:
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def available_weights(extra: dict[str, str | os.PathLike] | None = None) -> dict[str, bool]:
    """Which default models (and ``extra`` {label: name or path}) are on disk; no network.

    Returns {hub id or label: True when a folder with config.json is found in the
    Hugging Face cache or at the given path}.
    """
    out = {name: local_model_dir(name) is not None for name in DEFAULT_MODELS.values()}
    for label, name in (extra or {}).items():
        out[label] = local_model_dir(name) is not None
    return out
