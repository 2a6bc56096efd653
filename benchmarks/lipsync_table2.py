"""Benchmark: the lip-sync paper's Table 2 for our code (Zheng et al. 2020, arXiv:2002.08700, §4.2).

For the time-delayed LSTM, the BiLSTM and the TCN generator at the paper's sizes (256 units/filters,
windows of 200 MFCC frames <-> 50 video frames):

- batch training time: one optimizer update (forward, loss = regression + inter-frame, backward,
  Adam) on a batch of ``--batch`` windows;
- inference time for one minute of audio: MFCC (6000,13) at 100 Hz -> mouth PCA (1500,10) at 25 fps
  with the long-audio inference used in deployment (overlapping windows, paper §4.3.4, batched),
  and, for reference, one pass over the whole minute (possible for every model here).

Goal (project issue): TCN inference >= 100x faster than BiLSTM. Median of ``--repeats`` runs after
a warm-up; CUDA when present (``--device``), synchronised around each timing. Random weights and
inputs (timings do not depend on the values). Writes benchmarks/results/lipsync_table2.json.

    .venv/bin/python benchmarks/lipsync_table2.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "lipsync_table2.json"
MODELS = ("lstm", "bilstm", "tcn")


def timed(fn, device, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(g, x, y, mfcc_long, device, repeats: int, loss_fn, predict_long) -> dict:
    """Timings of one generator: a training update on (x (B,200,13), y (B,50,10)), inference on mfcc_long (T,13)."""
    import torch

    opt = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))

    def train_step() -> None:
        loss = loss_fn(g(x), y)["loss"]  # (B,200,13)->(B,50,10)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def one_pass() -> None:
        with torch.inference_mode():
            g(mfcc_long[None].to(device))  # (1,T,13)->(1,T/4,10)

    g.train()
    train_s = timed(train_step, device, repeats)
    g.eval()
    windowed_s = timed(lambda: predict_long(g, mfcc_long, overlap_audio_frames=40, batch_windows=64, device=device,
                                            progress=False), device, repeats)
    return {"batch_train_s": train_s, "infer_windowed_s": windowed_s, "infer_one_pass_s": timed(one_pass, device, repeats),
            "n_params": sum(p.numel() for p in g.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    ap.add_argument("--batch", type=int, default=32, help="training batch size (windows)")
    ap.add_argument("--minutes", type=float, default=1.0, help="audio length for the inference timing")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    from a2v.io import write_json_atomic
    from a2v.recipes.lipsync.mouth_infer import predict_long
    from a2v.recipes.lipsync.mouth_loss import total_generator_loss
    from a2v.recipes.lipsync.mouth_model import MouthModelConfig, build_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    t_audio = int(round(args.minutes * 60 * 100)) // 4 * 4  # 100 Hz MFCC frames, multiple of 4
    mfcc_long = torch.randn(t_audio, 13)  # (T,13)
    x = torch.randn(args.batch, 200, 13, device=device)  # (B,200,13)
    y = torch.randn(args.batch, 50, 10, device=device)  # (B,50,10)
    rows = {}
    for arch in MODELS:
        rows[arch] = bench_model(build_generator(MouthModelConfig(arch=arch)).to(device), x, y, mfcc_long, device,
                                 args.repeats, total_generator_loss, predict_long)
        r = rows[arch]
        print(f"{arch:7s} train/batch {r['batch_train_s'] * 1e3:8.1f} ms   1 min windowed "
              f"{r['infer_windowed_s'] * 1e3:8.1f} ms   one pass {r['infer_one_pass_s'] * 1e3:8.1f} ms")
    speedup = rows["bilstm"]["infer_windowed_s"] / rows["tcn"]["infer_windowed_s"]
    speedup_best = min(rows["bilstm"]["infer_windowed_s"], rows["bilstm"]["infer_one_pass_s"]) / min(
        rows["tcn"]["infer_windowed_s"], rows["tcn"]["infer_one_pass_s"])
    result = {
        "benchmark": "lipsync_table2",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "batch_windows": args.batch,
        "audio_minutes": args.minutes,
        "repeats": args.repeats,
        "models": rows,
        "tcn_vs_bilstm_inference_speedup_windowed": speedup,
        "tcn_vs_bilstm_inference_speedup_best_of_both": speedup_best,
        "goal_tcn_100x_faster_than_bilstm": speedup >= 100.0,
    }
    write_json_atomic(args.out, result)
    print(f"TCN vs BiLSTM inference speed-up: {speedup:.1f}x windowed, {speedup_best:.1f}x best of both "
          f"(goal >= 100x: {'met' if speedup >= 100 else 'not met'}) -> {args.out}")


if __name__ == "__main__":
    main()
