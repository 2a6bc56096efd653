"""Tongue sampling benchmark: quality vs NFE, and seconds of compute per generated second of UTI video.

    python benchmarks/tongue_sampling.py [--seconds 1.0] [--device cuda|cpu] [--threads N]

1. Quality vs NFE: EDM deterministic Heun (Algorithm 1) and Euler on the Karras schedule
   (sigma 160 -> 0.002, rho 7) with the exact denoiser of N(0, 0.25^2) data, whose probability
   flow ODE has the closed-form solution x * sd / sqrt(sd^2 + sigma_max^2): the max relative
   error of the final sample is the sampler's discretisation error alone.
2. Speed, end to end through :class:`TonguePipeline.generate` (log-mel condition, both cascade
   stages, cyclic windows), with each config's own sampler (``sampler.name``: the tiny config's
   deterministic Heun, the paper config's stochastic Heun, EDM Algorithm 2; each row names it) at
   4, 18 and the config's ``sampler.steps``: the tiny config on this device; the paper config (64 -> 112 px
   cascade, 16-frame windows, 4-frame overlap) end to end on CUDA. On CPU one paper-size network
   evaluation takes tens of seconds, so there we time one NFE of each stage on one window and
   extrapolate: s per video s = (fps / (clip - overlap)) windows * NFE * (t_stage0 + t_stage1).
   Weights are random (speed does not depend on them); the paper's wav2vec2 / BERT encoders
   run once per utterance, not per NFE, and are left out (their weights are not needed here).

Writes benchmarks/results/tongue_sampling_<device>.json; uses CUDA when present unless --device says otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from a2v.config import load_config
from a2v.diffusion import karras_sigmas, prior_sample, sample_euler, sample_heun
from a2v.diffusion.samplers import heun_nfe
from a2v.io import write_json_atomic
from a2v.recipes.tongue.config import SamplerConfig, TongueConfig
from a2v.recipes.tongue.model import ConditionEncoder, build_denoiser
from a2v.recipes.tongue.pipeline import TonguePipeline

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "tongue"


def quality_vs_nfe() -> list[dict]:
    """Max relative error of the final sample vs the exact PF-ODE solution for N(0, 0.25^2) data."""
    sd, smax = 0.25, 160.0
    den = lambda x, s, c=None: x * sd**2 / (sd**2 + s.reshape(-1, 1) ** 2)  # noqa: E731  # exact D for N(0, sd^2)
    x = prior_sample((1000, 1), karras_sigmas(1, 0.002, smax), torch.Generator().manual_seed(0)).double()  # (1000,1)
    exact = x * sd / math.sqrt(sd**2 + smax**2)  # PF-ODE solution from sigma_max to 0
    rows = []
    for n in (2, 4, 8, 16, 32, 64):
        sig = karras_sigmas(n, 0.002, smax, dtype=torch.float64)
        for name, fn, nfe in (("heun", sample_heun, 2 * n - 1), ("euler", sample_euler, n)):
            err = ((fn(den, x, sig) - exact).abs() / exact.abs()).max().item()
            rows.append({"sampler": name, "steps": n, "nfe": nfe, "max_rel_error": err})
    return rows


def sampler_nfe(s: SamplerConfig) -> int:
    """Network evaluations per window of the config's sampler: Euler N; Heun and stochastic Heun 2N - 1."""
    return s.steps if s.name == "euler" else heun_nfe(s.steps)


def steps_to_time(preset: str) -> tuple[int, ...]:
    """4 and 18 steps (comparable with earlier runs) and the config's own ``sampler.steps``."""
    return tuple(sorted({4, 18, load_config(TongueConfig, CONFIGS / f"{preset}.yaml").sampler.steps}))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _pipeline(preset: str, steps: int, device: str) -> TonguePipeline:
    """Random-weight cascade of ``configs/tongue/<preset>.yaml`` with the log-mel condition (80 bands)."""
    cfg = load_config(TongueConfig, CONFIGS / f"{preset}.yaml",
                      ["cond.audio_features=logmel", "cond.use_text=false", f"sampler.steps={steps}"])
    enc = ConditionEncoder(cfg.cond)
    torch.manual_seed(0)
    stages = [build_denoiser(cfg, enc.audio_dim, None, i) for i in range(cfg.num_stages)]
    return TonguePipeline(cfg, stages, enc, conditional=True, device=device)


def end_to_end(preset: str, seconds: float, steps_list: tuple[int, ...], device: str) -> list[dict]:
    """Seconds per generated second of video, measured on one ``seconds``-long utterance per step count."""
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)  # (S,)
    rows = []
    for steps in steps_list:
        pipe = _pipeline(preset, steps, device)
        pipe.generate(wav[:1600], progress=False)  # warm-up (kernels, allocator)
        _sync(device)
        t = time.perf_counter()
        video = pipe.generate(wav, progress=False)  # (F,S,S)
        _sync(device)
        sec = time.perf_counter() - t
        c = pipe.cfg
        rows.append({"preset": preset, "device": device, "sampler": c.sampler.name, "steps": steps,
                     "nfe_per_window": sampler_nfe(c.sampler),
                     "frames": int(video.shape[0]), "size_px": int(video.shape[1]), "fps": c.data.fps,
                     "clip_frames": c.data.clip_frames, "overlap_frames": c.sampler.overlap_frames,
                     "seconds": sec, "s_per_video_s": sec / (video.shape[0] / c.data.fps), "extrapolated": False})
    return rows


@torch.no_grad()
def per_nfe(preset: str, device: str, repeats: int = 1) -> dict:
    """Seconds of one network evaluation of each cascade stage on one window (paper sizes)."""
    pipe = _pipeline(preset, 18, device)
    c = pipe.cfg
    out = {}
    for i, den in enumerate(pipe.stages):
        size = c.stage_size(i)
        for frames in (2, c.data.clip_frames):  # the 2-frame call warms up; the full window is timed
            x = torch.randn(1, 1, frames, size, size, device=device)  # (1,1,F,S,S)
            f_c = den.net.encode_condition(torch.randn(1, frames, pipe.encoder.audio_dim, device=device))  # (1,F,D)
            kw = {"lowres": x, "aug_level": torch.zeros(1, device=device)} if den.net.uses_lowres else {}
            sig = torch.ones(1, device=device)
            _sync(device)
            t = time.perf_counter()
            for _ in range(repeats if frames > 2 else 1):
                den(x, sig, f_c, **kw)
            _sync(device)
            out[f"stage{i}_{size}px_s_per_nfe"] = (time.perf_counter() - t) / (repeats if frames > 2 else 1)
    return out


def paper_extrapolated(device: str, steps_list: tuple[int, ...]) -> list[dict]:
    """Paper cascade, long utterances: windows per video second * NFE * (stage-0 + stage-1 s per NFE)."""
    t = per_nfe("paper", device)
    c = load_config(TongueConfig, CONFIGS / "paper.yaml")
    windows_per_s = c.data.fps / (c.data.clip_frames - c.sampler.overlap_frames)
    rows = []
    for steps in steps_list:
        nfe = sampler_nfe(replace(c.sampler, steps=steps))
        rows.append({"preset": "paper", "device": device, "sampler": c.sampler.name, "steps": steps,
                     "nfe_per_window": nfe,
                     "windows_per_video_s": windows_per_s, **t,
                     "s_per_video_s": windows_per_s * nfe * sum(t.values()), "extrapolated": True})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of the utterance generated end to end")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    a = ap.parse_args()
    dev = a.device
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    load_before = os.getloadavg()[0]  # on a shared CPU other work slows torch's threads (spin-waits): recorded
    t0 = time.perf_counter()
    rows = end_to_end("tiny", a.seconds, steps_to_time("tiny"), dev)
    if dev.startswith("cuda"):
        rows += end_to_end("paper", a.seconds, steps_to_time("paper"), dev)
    else:
        rows += paper_extrapolated(dev, steps_to_time("paper"))
    name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else platform.processor() or platform.machine()
    out = {"device": dev, "device_name": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "load_avg_1min": [load_before, os.getloadavg()[0]],
           "quality_vs_nfe": quality_vs_nfe(), "speed": rows, "wall_s": time.perf_counter() - t0}
    path = Path(__file__).parent / "results" / f"tongue_sampling_{dev.split(':')[0]}.json"
    write_json_atomic(path, out)
    for r in out["speed"]:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    print(f"wrote {path} in {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
