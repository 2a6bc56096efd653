"""Peak memory of streaming a long video through a2v.video (it must not grow with the length).

Writes a synthetic low-resolution video with an audio track (default 10 minutes, 25 fps,
96x128), then, each in a fresh process, streams it back with ``read_frames`` (native and
resampled to 30 fps) and ``read_audio``, recording the peak resident set size (RSS).
Result: benchmarks/results/video_memory.json. Audio is an array in a2v (float32 (S,)), so the
write and read_audio runs hold it (``audio_array_mb``); frames are never all held.

    python benchmarks/video_memory.py [--minutes 10] [--height 96 --width 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "video_memory.json"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB


def _frames(n: int, h: int, w: int):
    import numpy as np

    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        yield np.stack([(xx + i) % 256, (yy + 2 * i) % 256, np.full_like(xx, i % 256)], -1).astype(np.uint8)


def _child(task: str, path: str, n: int, h: int, w: int, fps: float) -> dict:
    """Run one task in this (fresh) process; returns its timings and peak RSS."""
    import numpy as np

    from a2v.video import read_audio, read_frames, write_video

    base = _peak_rss_mb()
    t0 = time.perf_counter()
    if task == "write":
        sr = 16000
        audio = np.arange(int(n / fps * sr), dtype=np.float32)  # (S,) sample index; the audio is an array
        audio *= 2 * np.pi * 220 / sr
        np.sin(audio, out=audio)
        audio *= 0.1
        count = write_video(path, _frames(n, h, w), fps, audio=audio, audio_sr=sr, preset="ultrafast")
    elif task == "read":
        count = sum(1 for _ in read_frames(path))
    elif task == "read_cfr30":
        count = sum(1 for _ in read_frames(path, fps=30))
    elif task == "read_audio":
        count = len(read_audio(path)[0])
    else:
        raise ValueError(task)
    return {
        "task": task,
        "items": count,
        "seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb_after_import": round(base, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = round(args.minutes * 60 * args.fps)
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], n, args.height, args.width, args.fps)))
        return

    from a2v.io import write_json_atomic

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "long.mp4")
        for task in ("write", "read", "read_cfr30", "read_audio"):
            cmd = [sys.executable, __file__, "--minutes", str(args.minutes), "--height", str(args.height)]
            cmd += ["--width", str(args.width), "--fps", str(args.fps), "--child", task, path]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(runs[-1])
        size_mb = Path(path).stat().st_size / 2**20
    result = {
        "video": {
            "minutes": args.minutes,
            "fps": args.fps,
            "frames": n,
            "height": args.height,
            "width": args.width,
        },
        "file_mb": round(size_mb, 1),
        "frames_in_memory_mb": round(
            n * args.height * args.width * 3 / 2**20, 1
        ),  # what read_video would hold
        "audio_array_mb": round(
            n / args.fps * 16000 * 4 / 2**20, 1
        ),  # float32 16 kHz, held by write/read_audio
        "runs": runs,
        "max_growth_mb": max(r["peak_rss_mb"] - r["peak_rss_mb_after_import"] for r in runs),
    }
    write_json_atomic(RESULTS, result)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
