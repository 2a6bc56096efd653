"""Reading published PyTorch Lightning checkpoints (taming-transformers VQGAN, Wav2CLIP) and converting them once.

A Lightning ``.ckpt`` is a pickled dict: ``state_dict`` (the tensors), ``epoch``, ``global_step``,
``pytorch-lightning_version``, ``optimizer_states``, ``lr_schedulers``, ``callbacks`` (keyed by callback
*classes*, e.g. ``ModelCheckpoint``) and often ``hyper_parameters`` (argparse/OmegaConf objects). The
loaders here only read with ``torch.load(weights_only=True)``, which refuses those objects. The explicit
conversion :func:`convert_lightning_checkpoint` (``a2v image convert-vqgan`` / ``convert-wav2clip``) reads
such a file once, with the user's ``--trust-pickle`` consent, and writes its ``state_dict`` as safetensors.

During that conversion classes outside torch, collections and numpy are never imported or run: the
unpickler substitutes an inert placeholder for each (so Lightning/OmegaConf need not be installed).
Hand-written (about 60 lines): no maintained library reads a Lightning file without Lightning itself.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from a2v.errors import ConfigError, InputError, MissingWeightsError


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, hint: str = "") -> None:
    """Load ``state`` into ``module`` with every key and shape matching; otherwise one ConfigError:
    "{what}: <which keys or shapes>{; hint}"."""
    tail = f"; {hint}" if hint else ""
    try:
        res = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of another shape
        raise ConfigError(f"{what}: {str(e).splitlines()[-1].strip()[:200]}{tail}") from None
    if res.missing_keys or res.unexpected_keys:
        raise ConfigError(f"{what}: {len(res.missing_keys)} missing (e.g. {res.missing_keys[:2]}), "
                          f"{len(res.unexpected_keys)} unexpected (e.g. {res.unexpected_keys[:2]}) keys{tail}")

# Truncated files, or other bytes (e.g. a .wav given by mistake) run as pickle opcodes, fail in all these ways.
_NOT_A_CHECKPOINT = (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError, TypeError)


def read_state_dict(path: str | os.PathLike, what: str, convert_cmd: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: ``.safetensors`` as is, else ``torch.load(weights_only=True)`` and its
    ``state_dict`` (a plain state dict works too). A file holding other Python objects (a Lightning .ckpt
    with callbacks or hyper-parameters) raises one InputError naming ``convert_cmd``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingWeightsError(f"{what} not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a global (callbacks, hyper-parameters) or junk
        glob = _refused_global(e, p)
        fix = (f"convert it once to safetensors with: {convert_cmd} {p} --trust-pickle (only for a file from a "
               "source you trust)") if convert_cmd else "save its state dict alone (tensors only)"
        raise InputError(f"{p} holds Python objects besides tensors (e.g. {glob}); {fix}") from None
    except _NOT_A_CHECKPOINT as e:  # truncated or not a torch file at all
        raise InputError(f"{p} is not a readable torch checkpoint ({str(e).strip()[:160]})") from None
    return _tensors(raw, p)


def _refused_global(e: Exception, p: Path) -> str:
    """The class ``torch.load(weights_only=True)`` refused (from its message); InputError when the file is not
    a torch checkpoint at all (no class named, not a torch.save zip archive)."""
    import re
    import zipfile

    m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
    if m:
        return m[1]
    if not zipfile.is_zipfile(p):
        raise InputError(f"{p} is not a readable torch checkpoint") from None
    return "an object weights_only cannot read"


def _tensors(raw: Any, p: Path) -> dict[str, torch.Tensor]:
    sd = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    if not isinstance(sd, dict):
        raise InputError(f"{p} is not a checkpoint with a state dict (got {type(sd).__name__})")
    out = {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise InputError(f"{p} has no tensors in its state_dict")
    return out


class _Inert:
    """Stands for a class the converter will not import: records constructor arguments and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # not called for NEWOBJ: attributes made lazily
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.__dict__["pickled_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses (Lightning's AttributeDict)
        self.__dict__.setdefault("entries", {})[key] = value

    def append(self, value: Any) -> None:  # list subclasses
        entries = self.__dict__.setdefault("entries", {})
        entries[len(entries)] = value

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)


_REAL_BUILTINS = {"set", "frozenset", "slice", "complex", "range", "bytearray", "list", "dict", "tuple", "int",
                  "float", "str", "bool", "bytes"}
_inert_classes: dict[tuple[str, str], type] = {}


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        top = module.split(".")[0]
        if top in ("torch", "collections", "numpy", "_codecs") or (module == "builtins" and name in _REAL_BUILTINS):
            return super().find_class(module, name)
        key = (module, name)
        if key not in _inert_classes:
            _inert_classes[key] = type(name, (_Inert,), {"__module__": "a2v.inert." + module})
        return _inert_classes[key]


class _InertPickle:
    """A ``pickle_module`` for torch.load whose unpickler replaces foreign classes by :class:`_Inert`."""

    Unpickler = _InertUnpickler
    __name__ = "a2v_inert_pickle"

    @staticmethod
    def load(f: Any, **kwargs: Any) -> Any:
        return _InertUnpickler(f, **kwargs).load()


def convert_lightning_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, trust_pickle: bool = False,
                                 required_prefix: str = "") -> dict[str, Any]:
    """Write the ``state_dict`` tensors of ``src`` (a Lightning .ckpt or plain torch file) to ``dst`` (safetensors).

    Tries ``weights_only=True`` first; when the file holds other objects, ``trust_pickle=True`` is needed
    (the file is then unpickled with foreign classes made inert; torch's own classes still run).
    ``required_prefix``: a key prefix that must occur (e.g. "quantize." for a VQGAN). Returns a report dict.
    """
    from safetensors.torch import save_file

    from a2v.io import atomic_path

    p, out = Path(src).expanduser(), Path(dst).expanduser()
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    unpickled = False
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except _NOT_A_CHECKPOINT as e:
        raise InputError(f"{p} is not a readable torch checkpoint ({str(e).strip()[:160]})") from None
    except pickle.UnpicklingError as e:
        _refused_global(e, p)  # junk is an error here too
        if not trust_pickle:
            raise InputError(f"{p} holds Python objects besides tensors; converting it means unpickling them: "
                             "add --trust-pickle if the file comes from a source you trust") from None
        try:
            raw = torch.load(p, map_location="cpu", weights_only=False, pickle_module=_InertPickle)
        except (pickle.UnpicklingError, *_NOT_A_CHECKPOINT) as e:
            raise InputError(f"{p} is not a readable torch checkpoint ({type(e).__name__}: {e})") from None
        unpickled = True
    sd = _tensors(raw, p)
    if required_prefix and not any(k.startswith(required_prefix) for k in sd):
        raise InputError(f"{p} has no '{required_prefix}*' tensors: not the expected checkpoint")
    meta = {"source": p.name, "unpickled": str(unpickled)}
    if isinstance(raw, dict):
        meta |= {k: str(raw[k]) for k in ("epoch", "global_step") if isinstance(raw.get(k), int)}
    with atomic_path(out) as tmp:
        save_file({k: v.detach().clone().contiguous() for k, v in sd.items()}, str(tmp), metadata=meta)
    return {"tensors": len(sd), "output": str(out), **meta}


__all__ = ["convert_lightning_checkpoint", "read_state_dict"]
