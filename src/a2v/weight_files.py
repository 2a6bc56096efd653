"""Where a named weight file is found: one rule for ``a2v info`` and every loader that takes a file name.

    p = resolve_weight_file("stylegan3-r-ffhqu-256x256.pkl", what="StyleGAN network pickle", key="generator.path")

Rule (disk only, nothing is downloaded):

1. the path as given (``~`` expanded; a relative path is relative to the working folder), when that file exists;
2. a bare file name (no folder part) is then looked up in ``<torch hub dir>/checkpoints/`` (``$TORCH_HOME``,
   default ``~/.cache/torch/hub/checkpoints``; :func:`a2v.metrics.weights.torch_hub_checkpoints_dir`), then
   in NVlabs' download cache ``<$DNNLIB_CACHE_DIR or ~/.cache/dnnlib>/downloads/`` where NVlabs' code keeps
   a downloaded ``NAME`` as ``<hash>_NAME``;
3. otherwise :class:`a2v.errors.MissingWeightsError` names the file, the folders looked in and the setting
   to change.
"""

from __future__ import annotations

import os
from pathlib import Path

from a2v.errors import MissingWeightsError


def dnnlib_downloads_dir() -> Path:
    """NVlabs' download cache (``dnnlib.util.open_url``): ``$DNNLIB_CACHE_DIR/downloads``, default
    ``~/.cache/dnnlib/downloads``."""
    return Path(os.environ.get("DNNLIB_CACHE_DIR") or Path.home() / ".cache" / "dnnlib").expanduser() / "downloads"


def weight_search_dirs() -> list[Path]:
    """The folders a bare file name is looked up in, in order (after the working folder)."""
    from a2v.metrics.weights import torch_hub_checkpoints_dir

    return [torch_hub_checkpoints_dir(), dnnlib_downloads_dir()]


def locate_weight_file(name: str | os.PathLike) -> Path | None:
    """The file that ``name`` means under the rule of this module, or None when it is not on disk."""
    if not str(name):
        return None
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if p.name != str(name):  # a path with a folder part is only taken as given
        return None
    hub, dnnlib = weight_search_dirs()
    if (hub / p.name).is_file():
        return hub / p.name
    hits = sorted(dnnlib.glob(f"*_{p.name}")) if dnnlib.is_dir() else []
    return hits[0] if hits else None


def resolve_weight_file(name: str | os.PathLike, *, what: str, key: str = "") -> Path:
    """``name`` (a path or a bare file name) -> the existing file (see the module rule).

    what: the kind of file for the message ("StyleGAN network pickle"); key: the setting that gives the path
    ("generator.path"). Raises MissingWeightsError naming the file and where it was looked for.
    """
    found = locate_weight_file(name)
    if found is not None:
        return found
    p = Path(name).expanduser()
    setting = f"set {key}=<path>" if key else "give its path"
    if not str(name):
        raise MissingWeightsError(f"no {what} given: {setting}")
    if p.name != str(name):
        raise MissingWeightsError(f"{what} not found: {p} ({setting}, or copy {p.name} to "
                                  f"{weight_search_dirs()[0]} and give the bare name)")
    hub, dnnlib = weight_search_dirs()
    raise MissingWeightsError(f"{what} {p.name} not found in the working folder, {hub} or {dnnlib}: copy it to {hub} "
                              f"or {setting}")
