"""Benchmark: detect every N frames + linear box interpolation vs detection on every frame.

Goal (project issue): >= 5x faster at a mean box error <= 3% of the box size.
Input: GRID clips (../shared/data/grid or $A2V_GRID_DIR) when present, else a synthetic camera pan
over scikit-image's astronaut photo. Writes benchmarks/results/face_tracking.json.

    .venv/bin/python benchmarks/face_tracking.py --clips 4 --detector mtcnn --device cpu
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "face_tracking.json"


def load_clips(n_clips: int) -> tuple[str, list[np.ndarray]]:
    """Up to n_clips videos as uint8 (F,H,W,3) arrays, and the source name."""
    import av

    grid = Path(os.environ.get("A2V_GRID_DIR", REPO.parent / "shared" / "data" / "grid"))
    paths = sorted(grid.glob("*.mpg"))[:n_clips] if grid.is_dir() else []
    if paths:
        clips = []
        for p in paths:
            with av.open(str(p)) as c:
                clips.append(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))  # (F,H,W,3)
        return "grid", clips
    from skimage import data

    img = data.astronaut()
    pan = np.stack([img[40 + i : 296 + i, 100 + 2 * i : 356 + 2 * i] for i in range(75)])  # (75,256,256,3)
    return "astronaut_pan", [pan]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4, help="number of GRID clips to use")
    ap.add_argument("--detector", default="mtcnn", choices=["mtcnn", "dlib_hog", "dlib_cnn"])
    ap.add_argument("--device", default="cpu", help="torch device for MTCNN (cpu, cuda, cuda:1)")
    ap.add_argument("--every", type=int, default=10, help="detect every N frames (talk paper: 10)")
    ap.add_argument("--min-face-px", type=float, default=64.0, help="GRID faces are ~100-150 px")
    ap.add_argument("--repeats", type=int, default=2, help="timing repeats (best of)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from a2v.face.detect import box_size_px, make_detector
    from a2v.face.track import TrackConfig, track_strict
    from a2v.io import write_json_atomic

    source, clips = load_clips(args.clips)
    det = make_detector(args.detector, device=args.device, min_size_px=args.min_face_px / 2)
    cfg = TrackConfig(detect_every_frames=args.every, min_face_px=args.min_face_px)
    det.detect(clips[0][:2])  # warm-up (model init, allocator)

    t_sparse = t_full = 0.0
    errors, per_clip, n_frames = [], [], 0
    for k, frames in enumerate(clips):
        best_sparse = best_full = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = track_strict(frames, det, cfg)
            best_sparse = min(best_sparse, time.perf_counter() - t0)
            t0 = time.perf_counter()
            full = det.detect(frames)
            best_full = min(best_full, time.perf_counter() - t0)
        if res.track is None or any(len(d) == 0 for d in full):
            per_clip.append({"clip": k, "skipped": str(res.dropped or "a frame without a face")})
            continue
        fb = np.stack([d.boxes[0] for d in full])  # (F,4) top-scoring box per frame
        err = np.abs(res.track.boxes - fb).mean(axis=1) / box_size_px(fb)  # (F,) fraction of box size
        errors.append(err)
        t_sparse += best_sparse
        t_full += best_full
        n_frames += len(frames)
        per_clip.append(
            {"clip": k, "frames": len(frames), "sparse_s": best_sparse, "full_s": best_full,
             "mean_box_error_pct": float(100 * err.mean()), "max_box_error_pct": float(100 * err.max())}
        )  # fmt: skip
    if not errors:
        raise SystemExit("no clip could be tracked; nothing to report")
    err_all = np.concatenate(errors)
    ratio = t_full / t_sparse
    result = {
        "source": source,
        "detector": args.detector,
        "device": args.device,
        "detect_every_frames": args.every,
        "frames": n_frames,
        "every_frame_fps": n_frames / t_full,
        "interpolated_fps": n_frames / t_sparse,
        "speed_ratio": ratio,
        "mean_box_error_pct": float(100 * err_all.mean()),
        "p95_box_error_pct": float(100 * np.percentile(err_all, 95)),
        "goal": {"speed_ratio_min": 5.0, "mean_box_error_pct_max": 3.0},
        "goal_met": bool(ratio >= 5.0 and 100 * err_all.mean() <= 3.0),
        "note": "error = mean |corner difference| / longer box side, vs the detector run on every frame",
        "per_clip": per_clip,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count()},
    }  # fmt: skip
    write_json_atomic(args.out, result)
    print(
        f"{source}/{args.detector}: {ratio:.1f}x faster, mean box error {result['mean_box_error_pct']:.2f}% "
        f"(goal >=5x at <=3%: {'met' if result['goal_met'] else 'NOT met'}) -> {args.out}"
    )


if __name__ == "__main__":
    main()
