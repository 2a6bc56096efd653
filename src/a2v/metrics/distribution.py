"""Distribution metrics: Fréchet distance, FID (images) and FVD (videos).

FID (Heusel et al. 2017) uses torchmetrics' FrechetInceptionDistance with torch-fidelity's
InceptionV3 weights read from disk; FVD (Unterthiner et al. 2018) uses a TorchScript I3D the user
provides (``i3d_torchscript.pt``, the TF-hub I3D as exported by StyleGAN-V). Nothing downloads:
missing weights raise :class:`a2v.errors.MissingWeightsError` naming the file.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from a2v.errors import InputError, MissingWeightsError, missing_package
from a2v.metrics._inputs import as_tensor, images_float01, videos_float01
from a2v.metrics.weights import find_checkpoint, torch_hub_checkpoints_dir

# torch-fidelity's InceptionV3 (the TF FID graph), as named in the torch hub checkpoint folder;
# pytorch-fid ships the same network as pt_inception-2015-12-05-6726825d.pth.
INCEPTION_FILES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
I3D_FILE = "i3d_torchscript.pt"


def gaussian_stats(features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D,D), float64, of features (N,D) with N >= 2."""
    x = as_tensor(features, "features")
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"features must be (N,D) with N >= 2 samples, got shape {tuple(x.shape)}")
    return x.mean(dim=0), torch.cov(x.T)  # (N,D)->(D,), (D,D)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (D,D)."""
    evals, evecs = torch.linalg.eigh((s + s.T) / 2)  # (D,), (D,D)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T  # (D,D)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))   (Dowson & Landau 1982; FID, Heusel et al. 2017)
    tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2): the inner matrix is symmetric PSD, so only
    symmetric eigendecompositions are needed (stabler than a general sqrtm; torchmetrics keeps its
    version private and tensor-state bound, so it is written here once for FID, FVD and stored stats).
    mu: (D,), sigma: (D,D) symmetric PSD; numpy or torch; computed in float64. Returns a float >= 0.
    """
    m1, m2 = as_tensor(mu1, "mu1").reshape(-1), as_tensor(mu2, "mu2").reshape(-1)  # (D,)
    s1, s2 = as_tensor(sigma1, "sigma1"), as_tensor(sigma2, "sigma2").to(m1.device)
    d = m1.numel()
    if m2.numel() != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise InputError(
            f"frechet_distance: expected mu (D,) and sigma (D,D), got {tuple(m1.shape)}, {tuple(s1.shape)}, "
            f"{tuple(m2.shape)}, {tuple(s2.shape)}"
        )
    r1 = _psd_sqrt(s1.to(m1.device))  # (D,D)
    inner = r1 @ s2 @ r1  # (D,D)
    tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    val = (m1 - m2.to(m1.device)).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return max(float(val), 0.0)


def _inception_path(weights_path: str | os.PathLike | None) -> Path:
    if weights_path is not None:
        return find_checkpoint(INCEPTION_FILES[0], weights_path, "FID (InceptionV3)")
    for name in INCEPTION_FILES[1:]:
        p = torch_hub_checkpoints_dir() / name
        if p.is_file():
            return p
    return find_checkpoint(INCEPTION_FILES[0], None, "FID (InceptionV3)")


def build_fid(
    weights_path: str | os.PathLike | None = None, feature_dim: int = 2048, device: str | torch.device = "cpu"
):
    """torchmetrics ``FrechetInceptionDistance`` on InceptionV3 weights read from disk.

    weights_path: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (default: looked
    up in the torch hub checkpoint folder). The metric takes float (B,3,H,W) in [0,1]
    (``normalize=True``) through ``update(imgs, real=bool)``; ``compute()`` gives the FID.
    """
    path = _inception_path(weights_path)
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise missing_package("torchmetrics", "metrics", "FID") from e
    try:  # torch-fidelity unpickles with weights_only=False: check the file holds plain tensors first
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure (unsafe global, corrupt file) makes it unusable
        raise InputError(f"{path} is not a plain InceptionV3 state dict ({type(e).__name__})") from e
    try:
        metric = FrechetInceptionDistance(
            feature=feature_dim, normalize=True, feature_extractor_weights_path=str(path)
        )
    except ModuleNotFoundError as e:
        raise missing_package("torch-fidelity", "metrics", "FID") from e
    except RuntimeError as e:
        raise InputError(
            f"{path} does not match torch-fidelity's InceptionV3 ({str(e).splitlines()[0]})"
        ) from e
    return metric.to(device)


def fid(
    real: Any,
    fake: Any,
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    metric: Any = None,
    progress: bool = True,
) -> float:
    """Fréchet Inception Distance between two image sets (lower is better).

    real, fake: float (N,3,H,W) in [0,1] or uint8 (N,H,W,3), N >= 2 each (use thousands for a
    meaningful number); resized to 299x299 inside the network. metric: a prebuilt
    :func:`build_fid` result (or any torchmetrics FID, e.g. with a custom feature module).
    """
    r, f = images_float01(real, "real"), images_float01(fake, "fake")
    if r.shape[0] < 2 or f.shape[0] < 2:
        raise InputError(f"FID needs at least 2 images per set, got {r.shape[0]} real and {f.shape[0]} fake")
    metric = metric if metric is not None else build_fid(weights_path, device=device)
    device = metric.device  # a prebuilt metric decides where the images go
    metric.reset()
    n_batches = math.ceil(r.shape[0] / batch_size) + math.ceil(f.shape[0] / batch_size)
    with torch.no_grad(), tqdm(total=n_batches, desc="FID", disable=not progress) as bar:
        for imgs, is_real in ((r, True), (f, False)):
            for i in range(0, imgs.shape[0], batch_size):
                metric.update(imgs[i : i + batch_size].to(device), real=is_real)
                bar.update(1)
    return float(metric.compute())


def load_i3d(
    i3d_path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> torch.jit.ScriptModule:
    """The FVD feature network: a TorchScript I3D (default ``<torch hub checkpoints>/i3d_torchscript.pt``).

    It must accept ``(x, rescale=False, resize=False, return_features=True)`` with x float
    (B,3,F,224,224) in [-1,1] and return features (B,D) (D=400 for StyleGAN-V's export).
    """
    path = find_checkpoint(I3D_FILE, i3d_path, "FVD (TorchScript I3D)")
    try:
        with warnings.catch_warnings():  # the published I3D exists only as TorchScript
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as e:
        raise InputError(f"{path} is not a TorchScript module ({str(e).splitlines()[0]})") from e


def _i3d_input(videos: torch.Tensor, resolution: int) -> torch.Tensor:
    """float (b,F,3,H,W) [0,1] -> (b,3,F,R,R) [-1,1]: shorter side to R (bilinear), centre crop."""
    b, nf, c, h, w = videos.shape
    scale = resolution / min(h, w)
    size = (max(resolution, math.ceil(h * scale)), max(resolution, math.ceil(w * scale)))
    x = videos.flatten(0, 1)  # (b,F,3,H,W)->(bF,3,H,W)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (bF,3,H,W)->(bF,3,H',W')
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    x = x[:, :, top : top + resolution, left : left + resolution]  # (bF,3,R,R)
    x = x.reshape(b, nf, c, resolution, resolution).permute(0, 2, 1, 3, 4)  # (bF,3,R,R)->(b,3,F,R,R)
    return (x - 0.5) * 2


@torch.no_grad()
def i3d_features(
    videos: Any,
    detector: torch.nn.Module,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    resolution: int = 224,
    progress: bool = True,
) -> torch.Tensor:
    """I3D features of videos: float (B,F,3,H,W) [0,1] or uint8 (B,F,H,W,3) -> float64 (B,D) on the CPU.

    Preprocessing follows StyleGAN-V's FVD: shorter side to 224, centre crop, [-1,1], (B,3,F,H,W).
    """
    v = videos_float01(videos, "videos")
    feats = []
    for i in tqdm(range(0, v.shape[0], batch_size), desc="I3D", disable=not progress):
        x = _i3d_input(v[i : i + batch_size].to(device), resolution)  # (b,F,3,H,W)->(b,3,F,R,R)
        out = detector(x, rescale=False, resize=False, return_features=True)  # (b,3,F,R,R)->(b,D)
        feats.append(out.reshape(out.shape[0], -1).double().cpu())  # (b,D)
    return torch.cat(feats)  # (B,D)


def fvd(
    real: Any,
    fake: Any,
    i3d_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    detector: torch.nn.Module | None = None,
    progress: bool = True,
) -> float:
    """Fréchet Video Distance between two video sets (lower is better).

    real, fake: float (N,F,3,H,W) in [0,1] or uint8 (N,F,H,W,3), N >= 2 each (the usual protocol
    is 2048 clips of 16 frames). detector: a loaded I3D (default :func:`load_i3d` of ``i3d_path``).
    """
    if detector is None:
        if i3d_path is None and not (torch_hub_checkpoints_dir() / I3D_FILE).is_file():
            raise MissingWeightsError(
                f"FVD needs a TorchScript I3D ({I3D_FILE}, as exported by StyleGAN-V): pass its path or copy it "
                f"to {torch_hub_checkpoints_dir()}"
            )
        detector = load_i3d(i3d_path, device)
    fr = i3d_features(real, detector, device, batch_size, progress=progress)  # (N,D)
    ff = i3d_features(fake, detector, device, batch_size, progress=progress)  # (N,D)
    return frechet_distance(*gaussian_stats(fr), *gaussian_stats(ff))
