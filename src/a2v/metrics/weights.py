"""Where pretrained weights live offline: the torch hub checkpoint folder and the Hugging Face cache.

Only looks at the disk: nothing here downloads or touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from a2v.errors import MissingWeightsError


def torch_hub_checkpoints_dir() -> Path:
    """``<torch hub dir>/checkpoints``, where torchvision and torch-fidelity keep downloaded weights.

    Honours ``torch.hub.set_dir`` and ``$TORCH_HOME`` (default ``~/.cache/torch/hub/checkpoints``).
    """
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time.

    ``$HF_HUB_CACHE``, else ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` (default ``~/.cache/huggingface/hub``).
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"


def hf_cached_snapshot(
    repo_id: str, filename: str = "config.json", cache_dir: Path | None = None
) -> Path | None:
    """Folder of a cached snapshot of model ``repo_id`` that holds ``filename``, or None.

    Looks for ``<cache>/models--<org>--<name>/snapshots/<rev>/<filename>`` (the layout
    huggingface_hub writes); prefers the revision named in ``refs/main``.
    """
    root = (cache_dir or hf_hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    ref = root / "refs" / "main"
    if ref.is_file():
        rev = ref.read_text().strip()
        if (snaps / rev / filename).exists():
            return snaps / rev
    for snap in sorted(snaps.iterdir()):
        if (snap / filename).exists():
            return snap
    return None


def find_checkpoint(filename: str, weights_path: str | os.PathLike | None, what: str) -> Path:
    """Resolve a weights file: ``weights_path`` when given, else ``<torch hub checkpoints>/<filename>``.

    Raises MissingWeightsError naming the file and where to copy it when it is not on disk.
    """
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"{what} weights not found at {p} (give the path of {filename})")
        return p
    p = torch_hub_checkpoints_dir() / filename
    if not p.is_file():
        raise MissingWeightsError(
            f"{what} needs the weights {filename} in {p.parent}; copy it there or pass its path (no download is attempted)"
        )
    return p


def load_features_state(features: Any, path: str | os.PathLike, what: str, only_needed: bool = False) -> Any:
    """Fill a torchvision ``.features`` trunk (nn.Sequential) from the state dict file at ``path``.

    The file may hold the full torchvision model (``features.*`` + ``classifier.*``) or only
    ``features.*``. ``only_needed``: the trunk is a prefix of the network; its later layers'
    weights in the file are ignored. Loaded with ``weights_only=True``; a file that is not such a
    state dict is an InputError naming ``what`` (e.g. "torchvision VGG19 weights").
    """
    import torch

    from a2v.errors import InputError

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise InputError(f"{path} is not a state dict of {what}")
    feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if only_needed:
        needed = set(features.state_dict())
        feats = {k: v for k, v in feats.items() if k in needed}
    try:
        features.load_state_dict(feats, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise InputError(f"{path} does not hold {what} ({first})") from e
    return features
