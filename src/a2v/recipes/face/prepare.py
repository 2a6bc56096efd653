"""``a2v prepare face``: talking-face clips -> shards (audio.npy + crop.mp4), with face-recipe defaults.

The shared engine (:mod:`a2v.data.prepare`) does the work; this module only chooses its settings:
``configs/face/paper.yaml``'s ``prepare:`` section (faces from 64 px, not the talk recipe's 200 px)
and, when no detector is given, the first usable of MediaPipe, MTCNN and dlib HOG. The detector is
built once before any clip is read, so a missing package fails at start with one line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from a2v.errors import MissingDependencyError

#: preference order of ``a2v prepare face`` when no detector is given (PrepareConfig names)
DETECTOR_ORDER = ("mediapipe", "mtcnn", "dlib")


def mediapipe_usable() -> bool:
    """True when mediapipe is installed with the legacy ``solutions.face_detection`` API our detector uses."""
    if importlib.util.find_spec("mediapipe") is None:
        return False
    try:
        import mediapipe as mp

        return hasattr(mp, "solutions") and hasattr(mp.solutions, "face_detection")
    except Exception:  # noqa: BLE001 - a broken install (e.g. protobuf clash) counts as not usable
        return False


def detector_available(name: str) -> bool:
    if name == "mediapipe":
        return mediapipe_usable()
    module = {"mtcnn": "facenet_pytorch", "dlib": "dlib", "dlib_cnn": "dlib"}[name]
    return importlib.util.find_spec(module) is not None


def choose_detector() -> str:
    """The first of :data:`DETECTOR_ORDER` that is installed; MissingDependencyError when none is."""
    for name in DETECTOR_ORDER:
        if detector_available(name):
            return name
    raise MissingDependencyError("no face detector installed (mediapipe, facenet-pytorch or dlib): "
                                 "pip install 'a2v[face]' (dlib) or install.sh (adds facenet-pytorch for MTCNN)")


def check_detector(name: str, device: str = "cpu") -> None:
    """Build detector ``name`` (PrepareConfig name) once, so a missing package fails before any clip."""
    from a2v.face.detect import make_detector

    make_detector("dlib_hog" if name == "dlib" else name, device="cpu" if device == "auto" else device)  # type: ignore[arg-type]


def _given_detector(config: Path | None, set_: Sequence[str]) -> str | None:
    """The detector named by ``--set [prepare.]detector=`` or the config's prepare section, else None."""
    from a2v.cliutil import configs_dir
    from a2v.config import read_yaml

    for s in reversed(list(set_)):
        key, _, value = s.partition("=")
        if key.removeprefix("prepare.") == "detector":
            return value
    path = config if config is not None else configs_dir() / "face" / "paper.yaml"
    if path.is_file():
        data: dict[str, Any] = read_yaml(path)
        section = data.get("prepare", data if "detector" in data else {})
        if isinstance(section, dict) and "detector" in section:
            return str(section["detector"])
    return None


def prepare(input: Sequence[Path], output: Path, num_shards: int = 1, shard_index: int = -1,  # noqa: A002
            config: Path | None = None, set_: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """``a2v prepare face``: choose and check the detector, then run the shared engine."""
    from a2v.cliutil import console
    from a2v.data.prepare import run_prepare_command

    sets = list(set_ or [])
    name = _given_detector(config, sets)
    if name is None:
        name = choose_detector()
        sets = [f"detector={name}", *sets]
        console.print(f"face detector: {name} (first usable of {', '.join(DETECTOR_ORDER)})", soft_wrap=True)
    check_detector(name)
    return run_prepare_command("face", input, output, num_shards, shard_index, config, sets, progress=progress)
