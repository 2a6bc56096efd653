"""Which torch device to run on: one rule for every command, pipeline and server."""

from __future__ import annotations

import os


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda:<LOCAL_RANK>" when CUDA is present (the process's own GPU under
    ``accelerate launch`` / ``torchrun``, else GPU 0), otherwise "cpu"; other values unchanged."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return "cpu"
