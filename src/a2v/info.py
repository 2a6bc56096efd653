"""``a2v info``: versions, devices, optional parts and which pretrained weights are on disk.

Nothing here touches the network: packages are imported (or located) locally, weights are
looked up in the package folders, the Hugging Face cache and the torch hub checkpoint folder.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VERSION_PACKAGES = ("a2v", "torch", "torchvision", "transformers", "diffusers", "accelerate", "av")

# (part, import name or binary, install hint); "bin:" marks an executable looked up on PATH.
OPTIONAL_PARTS: tuple[tuple[str, str, str], ...] = (
    ("face", "dlib", "pip install 'a2v[face]'"),
    ("face", "face_recognition_models", "pip install 'a2v[face]'"),
    ("face", "facenet_pytorch", "pip install --no-deps facenet-pytorch"),
    ("asr", "pocketsphinx", "pip install 'a2v[asr]'"),
    ("tts", "bin:espeak-ng", "apt install espeak-ng  (or pip install 'a2v[tts]')"),
    ("tts", "espeakng_loader", "pip install 'a2v[tts]'  (or apt install espeak-ng)"),
    ("ui", "gradio", "pip install 'a2v[ui]'"),
    ("metrics", "torchmetrics", "pip install 'a2v[metrics]'"),
    ("metrics", "lpips", "pip install 'a2v[metrics]'"),
    ("metrics", "torch_fidelity", "pip install 'a2v[metrics]'"),
    ("video", "bin:ffmpeg", "apt install ffmpeg"),
)

# Weights shipped inside packages: (name, package, files relative to the package folder; any of a group).
SHIPPED_WEIGHTS: tuple[tuple[str, str, tuple[tuple[str, ...], ...]], ...] = (
    (
        "MTCNN face detector (pnet/rnet/onet)",
        "facenet_pytorch",
        (("data/pnet.pt",), ("data/rnet.pt",), ("data/onet.pt",)),
    ),
    (
        "dlib 68-landmark predictor",
        "face_recognition_models",
        (("models/shape_predictor_68_face_landmarks.dat",),),
    ),
    (
        "dlib 128-d face model",
        "face_recognition_models",
        (("models/dlib_face_recognition_resnet_model_v1.dat",),),
    ),
    ("pocketsphinx English model", "pocketsphinx", (("model/en-us/en-us",), ("model/en-us/en-us.lm.bin",))),
    ("LPIPS linear layers v0.1", "lpips", (("weights/v0.1/alex.pth",),)),
    ("silero-vad", "silero_vad", (("data/silero_vad.jit", "data/silero_vad.onnx"),)),
    ("resemblyzer speaker encoder", "resemblyzer", (("pretrained.pt",),)),
)
OPTIONAL_SHIPPED = {"silero_vad", "resemblyzer"}  # reported only as "not installed" when absent

# Hugging Face models (name shown, repo ids whose cache folder may hold it).
HF_WEIGHTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("facebook/wav2vec2-base", ("facebook/wav2vec2-base",)),
    ("facebook/wav2vec2-large-xlsr-53", ("facebook/wav2vec2-large-xlsr-53",)),
    ("microsoft/wavlm-base-plus", ("microsoft/wavlm-base-plus",)),
    ("bert-base-chinese", ("google-bert/bert-base-chinese", "bert-base-chinese")),
    ("openai/whisper-small", ("openai/whisper-small",)),
    ("CLIP ViT-B/32", ("openai/clip-vit-base-patch32",)),
)

# Files kept in the torch hub checkpoint folder (name shown, accepted file names).
HUB_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("LPIPS AlexNet backbone", ("alexnet-owt-7be5be79.pth",)),
    ("LPIPS VGG16 backbone", ("vgg16-397923af.pth",)),
    (
        "FID InceptionV3",
        ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    ),
    ("FVD I3D (TorchScript)", ("i3d_torchscript.pt",)),
    ("StyleGAN3 FFHQ-U 256", ("stylegan3-r-ffhqu-256x256.pkl",)),
    ("VQGAN ImageNet f16 16384", ("vqgan_imagenet_f16_16384.ckpt",)),
    ("VQGAN ImageNet f16 16384 config", ("vqgan_imagenet_f16_16384.yaml",)),
)
# Loaded by bare file name (a2v.weight_files rule): the report says what those loaders would load.
NAMED_WEIGHT_FILES = {"stylegan3-r-ffhqu-256x256.pkl", "vqgan_imagenet_f16_16384.ckpt", "vqgan_imagenet_f16_16384.yaml"}


@dataclass(frozen=True)
class Entry:
    """One line of the report: what, whether it is there, where/which version, how to get it."""

    name: str
    available: bool
    detail: str
    hint: str = ""


def _package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_versions() -> dict[str, str | None]:
    """Python and core package versions (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    out.update({p: _version(p) for p in VERSION_PACKAGES})
    return out


def collect_devices() -> dict[str, Any]:
    """CPU count, CUDA availability and device names, MPS availability."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {
        "cpu_count": os.cpu_count(),
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "cuda_version": torch.version.cuda,
        "mps_available": mps,
    }


def _check_import(module: str, hint: str) -> Entry:
    if module.startswith("bin:"):
        exe = shutil.which(module[4:])
        return Entry(module[4:], exe is not None, exe or "not on PATH", "" if exe else hint)
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # a broken install can raise anything at import; report it, never crash the report
        pkg = _package_dir(module)
        if module == "face_recognition_models" and pkg is not None and (pkg / "models").is_dir():
            # A data-only package whose __init__ needs pkg_resources (gone from setuptools >= 81).
            return Entry(
                module, True, f"model files present (import fails: {e})", "read the .dat files by path"
            )
        return Entry(module, False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", hint)
    ver = getattr(mod, "__version__", None) or _version(module.replace("_", "-")) or "installed"
    return Entry(module, True, str(ver))


def collect_optional() -> dict[str, list[dict[str, Any]]]:
    """Per optional part (face, asr, tts, ui, metrics, video): importable packages and binaries."""
    out: dict[str, list[dict[str, Any]]] = {}
    for part, module, hint in OPTIONAL_PARTS:
        out.setdefault(part, []).append(asdict(_check_import(module, hint)))
    return out


def _shipped() -> dict[str, dict[str, Any]]:
    out = {}
    for name, package, groups in SHIPPED_WEIGHTS:
        pkg = _package_dir(package)
        if pkg is None:
            hint = "optional" if package in OPTIONAL_SHIPPED else f"install {package.replace('_', '-')}"
            out[name] = {"kind": "shipped", **asdict(Entry(name, False, f"{package} not installed", hint))}
            continue
        found = [next((pkg / f for f in group if (pkg / f).exists()), None) for group in groups]
        missing = [g[0] for g, p in zip(groups, found, strict=True) if p is None]
        ok = not missing
        detail = str(found[0]) if ok else f"missing in {pkg}: {', '.join(missing)}"
        out[name] = {
            "kind": "shipped",
            **asdict(Entry(name, ok, detail, "" if ok else f"reinstall {package}")),
        }
    return out


def _hub() -> dict[str, dict[str, Any]]:
    from a2v.metrics.weights import hf_cached_snapshot, hf_hub_cache_dir, torch_hub_checkpoints_dir

    out = {}
    cache = hf_hub_cache_dir()
    for name, repos in HF_WEIGHTS:
        snap = next(
            (s for r in repos if (s := hf_cached_snapshot(r, "config.json", cache)) is not None), None
        )
        if snap is None:
            hint = f"hf download {repos[0]} (networked machine), copy models--{repos[0].replace('/', '--')} to {cache}"
            out[name] = {
                "kind": "huggingface",
                **asdict(Entry(name, False, "not in the Hugging Face cache", hint)),
            }
            continue
        has_weights = any(snap.glob("*.safetensors")) or any(snap.glob("*.bin"))
        detail = str(snap) if has_weights else f"{snap} (config only: no weight file)"
        out[name] = {"kind": "huggingface", **asdict(Entry(name, True, detail))}
    from a2v.weight_files import locate_weight_file

    ckpt = torch_hub_checkpoints_dir()
    for name, files in HUB_FILES:
        if files[0] in NAMED_WEIGHT_FILES:  # the same look-up as the loaders (a2v.weight_files)
            hits = [p for f in files if (p := locate_weight_file(f)) is not None]
        else:
            hits = [ckpt / f for f in files if (ckpt / f).is_file()]
        ok = bool(hits)
        detail = str(hits[0]) if ok else f"{files[0]} not in {ckpt}"
        out[name] = {
            "kind": "torch hub",
            **asdict(Entry(name, ok, detail, "" if ok else f"copy {files[0]} to {ckpt}")),
        }
    return out


def collect_weights() -> dict[str, dict[str, Any]]:
    """Every known pretrained model: {name: {kind, name, available, detail, hint}}; disk look-ups only."""
    return {**_shipped(), **_hub()}


def weights_dirs() -> dict[str, str]:
    """The folders searched for downloadable weights."""
    from a2v.metrics.weights import hf_hub_cache_dir, torch_hub_checkpoints_dir

    return {"huggingface": str(hf_hub_cache_dir()), "torch_hub": str(torch_hub_checkpoints_dir())}


def collect_info() -> dict[str, Any]:
    """The whole report as plain data: versions, devices, optional parts, weights and their folders."""
    return {
        "versions": collect_versions(),
        "devices": collect_devices(),
        "optional": collect_optional(),
        "weights": collect_weights(),
        "weights_dirs": weights_dirs(),
    }


def _short(text: str, roots: dict[str, str]) -> str:
    """Replace a known folder prefix by a short label (for printing only)."""
    for label, root in roots.items():
        if root and text.startswith(root) and text != root:
            return f"<{label}>/{text[len(root) :].lstrip('/')}"
    return text


def print_info(console: Any = None, info: dict[str, Any] | None = None) -> None:
    """Print :func:`collect_info` as rich tables (to ``console``, default stdout)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    info = info or collect_info()
    yes, no = "[green]yes[/]", "[red]no[/]"

    t = Table(title="Versions", show_header=False)
    for k, v in info["versions"].items():
        t.add_row(k, v or "[red]not installed[/]")
    console.print(t)

    d = info["devices"]
    t = Table(title="Devices", show_header=False)
    t.add_row("CPU cores", str(d["cpu_count"]))
    t.add_row("CUDA", (yes + " " + ", ".join(d["cuda_devices"])) if d["cuda_available"] else no)
    t.add_row("MPS", yes if d["mps_available"] else no)
    console.print(t)

    t = Table(title="Optional parts")
    for col in ("part", "component", "ok", "version / error", "install"):
        t.add_column(col, overflow="fold")
    for part, entries in info["optional"].items():
        for e in entries:
            t.add_row(part, e["name"], yes if e["available"] else no, e["detail"], e["hint"])
    console.print(t)

    dirs = info.get("weights_dirs", {})
    roots = {
        "site-packages": sysconfig.get_paths()["purelib"],
        "hf cache": dirs.get("huggingface", ""),
        "torch hub": dirs.get("torch_hub", ""),
    }
    caption = f"hf cache = {roots['hf cache']}\ntorch hub = {roots['torch hub']}"
    t = Table(title="Pretrained weights (offline)", caption=caption)
    for col in ("model", "source", "available", "where / how"):
        t.add_column(col, overflow="fold")
    for name, e in info["weights"].items():
        text = e["detail"] if e["available"] else e["hint"] or e["detail"]
        t.add_row(
            name,
            e["kind"],
            yes if e["available"] else no,
            _short(text, roots)
            .replace(str(dirs.get("huggingface")), "<hf cache>")
            .replace(str(dirs.get("torch_hub")), "<torch hub>"),
        )
    console.print(t)
