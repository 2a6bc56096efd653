"""Tongue sampling benchmark: quality vs NFE (Gaussian data, exact denoiser) and seconds per generated second of video.

    python benchmarks/tongue_sampling.py [--size 64] [--frames 60]

Writes benchmarks/results/tongue_sampling.json; runs on CUDA when present, else CPU.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from a2v.config import load_config
from a2v.diffusion import karras_sigmas, prior_sample, sample_euler, sample_heun
from a2v.io import write_json_atomic
from a2v.recipes.tongue.config import TongueConfig
from a2v.recipes.tongue.model import build_denoiser
from a2v.recipes.tongue.sample import cyclic_sample


def quality_vs_nfe() -> list[dict]:
    """Max relative error of the final sample vs the exact PF-ODE solution for N(0, 0.25^2) data."""
    sd, smax = 0.25, 160.0
    den = lambda x, s, c=None: x * sd**2 / (sd**2 + s.reshape(-1, 1) ** 2)  # noqa: E731
    x = prior_sample((1000, 1), karras_sigmas(1, 0.002, smax), torch.Generator().manual_seed(0)).double()
    exact = x * sd / math.sqrt(sd**2 + smax**2)
    rows = []
    for n in (4, 8, 16, 32, 64):
        sig = karras_sigmas(n, 0.002, smax, dtype=torch.float64)
        for name, fn, nfe in (("heun", sample_heun, 2 * n - 1), ("euler", sample_euler, n)):
            err = ((fn(den, x, sig) - exact).abs() / exact.abs()).max().item()
            rows.append({"sampler": name, "steps": n, "nfe": nfe, "max_rel_error": err})
    return rows


def speed(size: int, frames: int, device: str) -> list[dict]:
    cfg = load_config(TongueConfig, Path(__file__).parents[1] / "configs/tongue/paper.yaml",
                      ["cascade.enabled=false", f"image_size_px={size}"])
    den = build_denoiser(cfg, 1024, 768, 0).to(device).eval()
    feats = torch.randn(1, frames, 1024, device=device)
    rows = []
    for steps in (4, 18):
        s = load_config(TongueConfig, None, [f"sampler.steps={steps}", f"image_size_px={size}"]).sampler
        t = time.perf_counter()
        cyclic_sample(den, lambda a, b: den.net.encode_condition(feats[:, a:b]), frames, size, cfg.data.clip_frames,
                      s, cfg.edm, torch.Generator().manual_seed(0), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t
        rows.append({"device": device, "size_px": size, "steps": steps, "frames": frames,
                     "s_per_video_s": sec / (frames / cfg.data.fps)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=60)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"quality_vs_nfe": quality_vs_nfe(), "speed": speed(a.size, a.frames, device)}
    write_json_atomic(Path(__file__).parent / "results" / "tongue_sampling.json", out)
    print(out)


if __name__ == "__main__":
    main()
