"""Benchmark: the talk recipe's batched W+ inversion vs inverting each clip on its own, at equal loss.

Goal (project issue, talk recipe): inversion >= 10x faster than the paper's one-clip-at-a-time
procedure (45 s per clip there) at equal final reconstruction loss.

Three ways through :func:`a2v.gan.invert.invert_sequences`, all with ``first_steps`` Adam steps for
frame 0 (lr 0.02 -> 0.01 half-way):

* *per clip* (the baseline, the paper's procedure): one call per clip, each later frame
  ``later_steps`` steps at lr 0.01 warm-started from the previous frame (``later_init="previous"``);
* *clips*: the same schedule with all clips in one call (frame t of every clip in one generator
  pass); Adam is element-wise, so every frame follows the same path as in the baseline;
* *clips + frames*: ``later_init="first"``, every later frame of every clip starts from its clip's
  frame-0 solution and all of them are optimised together (``--frame-batch`` images per pass) for
  ``--frame-steps`` steps. ``auto`` calibrates that count first (not timed; reported): the fewest
  steps of ``CANDIDATE_STEPS`` whose mean later-frame loss is within ``EQUAL_LOSS_RTOL`` of the
  chain's, so that the mean final loss is equal; the per-frame worst case is reported beside it.

Generator: the built-in small style-based generator
(:class:`a2v.gan.stylegan.SmallStyleGenerator`, random weights, fixed seed); targets are clips it
made itself (a random z drifting a little from frame to frame), so a perfect inversion exists.
Loss: MSE by default (LPIPS needs torchvision backbone weights on disk); ``--lpips-weights FILE``
gives the paper's MSE + 10 LPIPS. Writes benchmarks/results/talk_inversion.json.

    .venv/bin/python benchmarks/talk_inversion.py --clips 16 --frames 8 --first-steps 100 --threads 1
    .venv/bin/python benchmarks/talk_inversion.py --device cuda --clips 64 --frames 25 --first-steps 1000 \
        --resolution 64 --frame-batch 512

The defaults keep one run under ~4 minutes on a busy 2-core CPU. CPU figures depend heavily on what
else runs (the JSON keeps the 1-minute load average); with several threads on an oversubscribed CPU
torch spends most of its time waiting, hence ``--threads 1``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "talk_inversion.json"
PAPER_SECONDS_PER_CLIP = 45.0  # talk paper, one 256 px StyleGAN3 clip inverted on its own
GOAL_SPEED_RATIO = 10.0
EQUAL_LOSS_RTOL = 0.01  # mean final loss of a mode within 1 % of the baseline's
CANDIDATE_STEPS = (10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200)  # --frame-steps auto


def make_clips(
    G: torch.nn.Module, n_clips: int, n_frames: int, drift: float, seed: int
) -> list[torch.Tensor]:
    """n_clips clips float (F,3,R,R) synthesised by G from z drifting linearly by ``drift`` (in z units) over F frames."""
    g = torch.Generator().manual_seed(seed)
    clips = []
    for _ in range(n_clips):
        z0 = torch.randn(1, G.z_dim, generator=g)  # (1,z_dim)
        dz = torch.randn(1, G.z_dim, generator=g)  # (1,z_dim)
        t = torch.linspace(0.0, 1.0, n_frames)[:, None]  # (F,1)
        z = z0 + drift * t * dz  # (F,z_dim)
        with torch.no_grad():
            clips.append(
                G.synthesis(G.mapping(z.to(G.w_avg.device))).cpu()
            )  # (F,z_dim)->(F,num_ws,w_dim)->(F,3,R,R)
    return clips


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_invert(G, clips, loss_fn, kw: dict, device: torch.device, mode: str, frame_batch: int = 0):  # noqa: ANN001, ANN201
    """(seconds, per-clip results) for one mode: "per_clip", "clips" or "frames" (kw: the schedule)."""
    from a2v.gan.invert import invert_sequences

    sync(device)
    t0 = time.perf_counter()
    if mode == "per_clip":
        res = [invert_sequences(G, [c], loss_fn, max_batch=1, device=device, progress=False, **kw)[0] for c in clips]
    elif mode == "clips":
        res = invert_sequences(G, clips, loss_fn, max_batch=len(clips), device=device, progress=False, **kw)
    else:
        res = invert_sequences(G, clips, loss_fn, max_batch=frame_batch, device=device, progress=False,
                               **{**kw, "later_init": "first"})
    sync(device)
    return time.perf_counter() - t0, res


def calibrate_frame_steps(G, clips, loss_fn, first_ws: torch.Tensor, target_mean: float, frame_batch: int,
                          device: torch.device) -> tuple[int, list[dict]]:  # noqa: ANN001
    """Fewest CANDIDATE_STEPS for which later frames started from frame 0's solution ``first_ws`` (N,num_ws,w_dim)
    reach a mean loss <= target_mean * (1 + rtol); returns (steps, tried [{"steps", "later_loss_mean"}])."""
    from a2v.gan.invert import optimize_ws

    n_later = clips[0].shape[0] - 1
    target = torch.cat([c[1:] for c in clips])  # (N*(F-1),3,R,R)
    start = first_ws.repeat_interleave(n_later, 0)  # (N,num_ws,w_dim)->(N*(F-1),num_ws,w_dim)
    tried: list[dict] = []

    def mean_loss(steps: int) -> float:
        losses = [optimize_ws(G.synthesis, target[a : a + frame_batch].to(device), start[a : a + frame_batch].to(device),
                              steps, 0.01, loss_fn).loss.cpu() for a in range(0, target.shape[0], frame_batch)]
        mean = torch.cat(losses).mean().item()
        tried.append({"steps": steps, "later_loss_mean": mean})
        print(f"  calibrate: {steps} steps -> later-frame loss {mean:.5f} (chain {target_mean:.5f})", flush=True)
        return mean

    ok = lambda steps: mean_loss(steps) <= target_mean * (1 + EQUAL_LOSS_RTOL)  # noqa: E731
    lo, hi = 0, None  # lo fails (0 steps: frame 0's code), hi passes
    for steps in CANDIDATE_STEPS:
        if ok(steps):
            hi = steps
            break
        lo = steps
    if hi is None:
        return CANDIDATE_STEPS[-1], tried
    while hi - lo > 1:  # bisect to the fewest steps that pass
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi, tried


def compare(loss: torch.Tensor, base: torch.Tensor, res: list, t: float, t_base: float) -> dict:  # noqa: ANN001
    """Losses (N,F) of a mode vs the baseline's: means, per frame index, worst cases; speed."""
    rel = abs(loss.mean().item() - base.mean().item()) / max(base.mean().item(), 1e-12)
    ratio = loss / base.clamp_min(1e-12)  # (N,F)
    offs = torch.stack([(r.ws[1:] - r.ws[:1]).flatten(1).norm(dim=1).mean() for r in res])  # (N,)
    return {
        "seconds": t, "seconds_per_clip": t / loss.shape[0], "speed_ratio": t_base / t,
        "final_loss_mean": loss.mean().item(), "final_loss_rel_diff": rel,
        "later_frames_loss_mean": loss[:, 1:].mean().item(),
        "loss_per_frame_index": [round(x, 6) for x in loss.mean(0).tolist()],
        "worst_frame_index_ratio": (loss.mean(0) / base.mean(0)).max().item(),
        "worst_frame_ratio": ratio.max().item(), "best_frame_ratio": ratio.min().item(),
        "offset_norm_mean": offs.mean().item(),
        "equal_loss": rel <= EQUAL_LOSS_RTOL,
        "not_worse": loss.mean().item() <= base.mean().item() * (1 + EQUAL_LOSS_RTOL),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1")
    ap.add_argument("--clips", type=int, default=16, help="clips inverted (batched modes: all in one call)")
    ap.add_argument("--frames", type=int, default=8, help="frames per clip")
    ap.add_argument("--first-steps", type=int, default=100, help="Adam steps for frame 0 (paper: 1000)")
    ap.add_argument("--later-steps", type=int, default=5, help="Adam steps per later frame in the chain (paper: 5)")
    ap.add_argument("--frame-steps", default="auto", help="steps of the later frames in clips+frames mode, or auto")
    ap.add_argument("--frame-batch", type=int, default=0, help="images per pass in clips+frames mode (0: all)")
    ap.add_argument("--resolution", type=int, default=32, help="generator resolution in px (power of 2)")
    ap.add_argument("--w-dim", type=int, default=32, help="z and w size of the built-in generator")
    ap.add_argument("--channel-max", type=int, default=16, help="most channels per layer of the generator")
    ap.add_argument("--drift", type=float, default=0.3, help="z change over a clip (motion between frames)")
    ap.add_argument("--lpips-weights", default="", help="torchvision VGG16 file: loss MSE + 10 LPIPS (paper)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)  # fmt: skip

    from a2v.gan.invert import ReconstructionLoss
    from a2v.gan.stylegan import StyleGeneratorConfig, load_generator
    from a2v.io import write_json_atomic

    torch.manual_seed(args.seed)  # generator weights (benchmark script, not library code)
    cfg = StyleGeneratorConfig(
        z_dim=args.w_dim,
        w_dim=args.w_dim,
        resolution_px=args.resolution,
        mapping_layers=2,
        channel_base=16 * args.channel_max,
        channel_max=args.channel_max,
    )
    G = load_generator("builtin", "", builtin=cfg, device=device).requires_grad_(False)
    lpips_model, lpips_weight = None, 0.0
    if args.lpips_weights:
        from a2v.metrics import build_lpips

        lpips_model, lpips_weight = build_lpips("vgg", args.lpips_weights, device), 10.0
    loss_fn = ReconstructionLoss(lpips_model, 1.0, lpips_weight).to(device)
    clips = make_clips(G, args.clips, args.frames, args.drift, args.seed + 1)  # N x (F,3,R,R)
    kw = {"first_steps": args.first_steps, "first_lr": 0.02, "first_lr_final": 0.01,
          "later_steps": args.later_steps, "later_lr": 0.01}  # fmt: skip  # talk paper sec. 3.1
    frame_batch = args.frame_batch or args.clips * (args.frames - 1)

    timed_invert(G, clips[:1], loss_fn, {**kw, "first_steps": 4, "later_steps": 1}, device, "clips")  # warm-up
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"per clip: {args.clips} clips x {args.frames} frames on {device} ...", flush=True)
    t_single, res_single = timed_invert(G, clips, loss_fn, kw, device, "per_clip")
    print(f"clips: {args.clips} clips x {args.frames} frames on {device} ...", flush=True)
    t_clips, res_clips = timed_invert(G, clips, loss_fn, kw, device, "clips")
    loss_single = torch.stack([r.loss for r in res_single])  # (N,F)
    loss_clips = torch.stack([r.loss for r in res_clips])  # (N,F)

    t_cal0 = time.perf_counter()
    tried: list[dict] = []
    if args.frame_steps == "auto":
        first_ws = torch.stack([r.ws[0] for r in res_clips])  # (N,num_ws,w_dim)
        frame_steps, tried = calibrate_frame_steps(G, clips, loss_fn, first_ws, loss_single[:, 1:].mean().item(),
                                                   frame_batch, device)
    else:
        frame_steps = int(args.frame_steps)
    t_cal = time.perf_counter() - t_cal0
    print(f"clips + frames: later frames {frame_steps} steps from frame 0, {frame_batch} images per pass ...",
          flush=True)
    t_frames, res_frames = timed_invert(G, clips, loss_fn, {**kw, "later_steps": frame_steps}, device, "frames",
                                        frame_batch)
    loss_frames = torch.stack([r.loss for r in res_frames])  # (N,F)

    with torch.no_grad():
        start = (
            loss_fn(
                G.synthesis(G.w_avg[None, None].expand(args.clips, G.num_ws, -1)),
                torch.stack([c[0] for c in clips]).to(device),
            )
            .mean()
            .item()
        )  # (N,3,R,R)->(N,)->()
    modes = {
        "per_clip": compare(loss_single, loss_single, res_single, t_single, t_single),
        "clips": compare(loss_clips, loss_single, res_clips, t_clips, t_single),
        "clips_frames": {**compare(loss_frames, loss_single, res_frames, t_frames, t_single),
                         "later_steps": frame_steps, "frame_batch": frame_batch, "calibration_s": t_cal,
                         "calibration": tried},
    }  # fmt: skip
    best = max(("clips", "clips_frames"), key=lambda m: modes[m]["speed_ratio"] if modes[m]["not_worse"] else 0.0)
    result = {
        "what": "a2v.gan.invert.invert_sequences: one call per clip (paper) vs batched over clips (same schedule) "
                "vs batched over clips and frames (later_init=first, steps calibrated to equal mean loss)",
        "device": str(device),
        "sizes": {"clips": args.clips, "frames_per_clip": args.frames, "first_steps": args.first_steps,
                  "later_steps": args.later_steps, "first_lr": "0.02 -> 0.01 half-way", "later_lr": 0.01,
                  "generator": {"kind": "builtin (random weights)", "resolution_px": args.resolution,
                                "num_ws": G.num_ws, "w_dim": G.w_dim, "channel_max": args.channel_max},
                  "targets": f"generated by the generator, z drifting by {args.drift} over a clip",
                  "loss": "MSE + 10 LPIPS (vgg)" if lpips_model is not None else "MSE (no LPIPS weights given)"},
        "loss_at_start_mean": start,
        "modes": modes,
        "best_mode_at_equal_loss": best,
        "speed_ratio": modes[best]["speed_ratio"],
        "goal": {"speed_ratio_min": GOAL_SPEED_RATIO, "equal_loss_rtol": EQUAL_LOSS_RTOL,
                 "paper_seconds_per_clip": PAPER_SECONDS_PER_CLIP},
        "goal_met": bool(modes[best]["speed_ratio"] >= GOAL_SPEED_RATIO and modes[best]["not_worse"]),
        "note": "equal_loss: mean final loss over all frames within 1 % of the per-clip baseline's; not_worse: at "
                "most 1 % above it; "
                "worst_frame_ratio is the largest per-frame loss ratio to the baseline (clips+frames: far frames "
                "start farther from their solution). The calibration of clips+frames steps is not timed. "
                "The paper's 45 s/clip was a 256 px StyleGAN3 on a GPU, not comparable in absolute seconds "
                "with this small generator",
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "load_avg_1min_before": load_before,
                    "load_avg_1min_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }  # fmt: skip
    write_json_atomic(args.out, result)

    print(f"\n{'mode':<14} {'total s':>8} {'s/clip':>8} {'mean loss':>10} {'worst frame':>11} {'speed':>6}")
    for name, m in modes.items():
        print(f"{name:<14} {m['seconds']:8.2f} {m['seconds_per_clip']:8.3f} {m['final_loss_mean']:10.5f} "
              f"{m['worst_frame_ratio']:10.2f}x {m['speed_ratio']:5.1f}x")
    print(f"start loss {start:.5f}; best at equal (or lower) mean loss: {best} {modes[best]['speed_ratio']:.1f}x; "
          f"goal >= {GOAL_SPEED_RATIO:.0f}x: {'met' if result['goal_met'] else 'NOT met'} -> {args.out}")


if __name__ == "__main__":
    main()
