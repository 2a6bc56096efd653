"""Benchmark: ``a2v prepare`` throughput on CPU (video frames prepared per second).

Runs the whole talking-face preparation (probe, 16 kHz audio + MFCC, MTCNN every N frames +
interpolation, dlib 68 landmarks, 256x256 H.264 crops, WebDataset shards) on GRID clips
(../shared/data/grid or $A2V_GRID_DIR) when present, else on generated clips (the astronaut head
moving over a background, eSpeak NG speech). Models are built before the clock starts; the time
per stage is measured by wrapping the detector and the landmarker. Writes
benchmarks/results/prepare_speed.json.

    .venv/bin/python benchmarks/prepare_speed.py --clips 6 --device cpu --threads 1

The CPU figure depends heavily on what else runs: the JSON keeps the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "prepare_speed.json"


class Timed:
    """Wraps a detector (``detect``) or a landmarker (call) and adds up the seconds spent in it."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.seconds, self.n = inner, 0.0, 0

    def detect(self, frames):  # noqa: ANN001, ANN201
        t0 = time.perf_counter()
        out = self.inner.detect(frames)
        self.seconds += time.perf_counter() - t0
        self.n += len(frames)
        return out

    def __call__(self, frame, box):  # noqa: ANN001, ANN201
        t0 = time.perf_counter()
        out = self.inner(frame, box)
        self.seconds += time.perf_counter() - t0
        self.n += 1
        return out


def inputs(n_clips: int, tmp: Path) -> tuple[str, list[Path], float]:
    """(source name, video paths, min_face_px suited to them)."""
    grid = Path(os.environ.get("A2V_GRID_DIR", REPO.parent / "shared" / "data" / "grid"))
    paths = sorted(grid.glob("*.mpg"))[:n_clips] if grid.is_dir() else []
    if paths:
        return "grid", paths, 64.0  # GRID faces are ~100-130 px in 360x288 frames
    import cv2
    from skimage import data

    from a2v.audio import synthesize_speech
    from a2v.video import write_video

    head = cv2.resize(
        data.astronaut()[20:260, 130:370], (224, 224), interpolation=cv2.INTER_AREA
    )  # (224,224,3)
    wav = synthesize_speech("set white with p two soon please", sr=16000)  # (S,)
    wav = np.pad(wav, (0, max(0, 48000 - len(wav))))[:48000]  # (S,)->(48000,) 3 s
    out = []
    for k in range(n_clips):
        frames = []
        for i in range(75):  # 3 s at 25 fps, 288x360 like GRID
            f = np.full((288, 360, 3), 70 + 10 * k, np.uint8)
            x = 40 + i
            f[30:254, x : x + 224] = head
            frames.append(f)
        out.append(tmp / f"gen{k}.mp4")
        write_video(out[-1], frames, 25, audio=wav, preset="ultrafast")
    return "generated", out, 64.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6, help="number of clips")
    ap.add_argument("--detector", default="mtcnn", choices=["mtcnn", "dlib", "dlib_cnn"])
    ap.add_argument("--device", default="cpu", help="torch device for MTCNN (cpu, cuda, cuda:1)")
    ap.add_argument("--every", type=int, default=10, help="detect every N frames (talk paper: 10)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(
            args.threads
        )  # on a shared or oversubscribed CPU, 1 thread per worker is faster

    from a2v.data import PrepareConfig, prepare_dataset
    from a2v.data.items import TalkingFaceExtractor
    from a2v.io import write_json_atomic

    tmp = Path(tempfile.mkdtemp(prefix="a2v_prepare_bench_"))
    try:
        source, paths, min_face = inputs(args.clips, tmp)
        cfg = PrepareConfig(
            min_face_px=min_face, detector=args.detector, device=args.device, detect_every_frames=args.every
        )
        base = TalkingFaceExtractor(cfg)
        t0 = time.perf_counter()
        det, lmk = Timed(base.detector), Timed(base.landmarker)
        load_s = time.perf_counter() - t0
        ex = TalkingFaceExtractor(cfg, detector=det, landmarker=lmk)
        ex(paths[0], "warmup", tmp)  # first-call allocations, lazy imports
        det.seconds = lmk.seconds = 0.0
        det.n = lmk.n = 0
        t0 = time.perf_counter()
        report = prepare_dataset(paths, tmp / "ds", cfg, extract=ex, progress=False)
        total_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = lmk.n
    if report["kept"] == 0:
        raise SystemExit(f"every clip was dropped: {report['dropped_by_reason']}")
    result = {
        "source": source,
        "clips": len(paths),
        "kept": report["kept"],
        "frames": frames,
        "seconds": total_s,
        "frames_per_s": frames / total_s,
        "realtime_factor": frames / 25.0 / total_s,
        "stage_seconds": {
            "detect": det.seconds,
            "landmarks": lmk.seconds,
            "decode_crop_encode_audio_shards": total_s - det.seconds - lmk.seconds,
        },
        "detected_frames": det.n,
        "model_load_s": load_s,
        "config": {"detector": args.detector, "device": args.device, "detect_every_frames": args.every,
                   "min_face_px": min_face, "crop_size_px": cfg.crop_size_px, "crop_preset": cfg.crop_preset},
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }  # fmt: skip
    write_json_atomic(args.out, result)
    print(
        f"prepare on {source} ({args.device}): {frames} frames in {total_s:.1f} s = {result['frames_per_s']:.1f} "
        f"frames/s ({result['realtime_factor']:.2f}x real time); detect {det.seconds:.1f} s, "
        f"landmarks {lmk.seconds:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
