"""Tongue generation time vs utterance length and torch threads (tiny config, CPU).

    nice -n 10 python benchmarks/tongue_generate_length.py [--seconds 1 2.8 6] [--threads 1 2] [--multi-seconds 1]

Prepares the synthetic UltraSuite-style corpus (``a2v.recipes.tongue.synthetic``), trains the tiny
cascade for a few steps through ``a2v tongue train`` (in a temporary folder), then times
``TonguePipeline.generate`` on eSpeak NG speech (``a2v.audio.tts``) cut to each length, counting the
network evaluations per stage. Linear cost means equal seconds per second of speech at every length.
Writes benchmarks/results/tongue_generate_length.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the quick brown fox jumps over the lazy dog and then runs far away into the dark green forest"


def train_tiny(work: Path, steps: int) -> Path:
    """A tiny cascade trained ``steps`` steps per stage on the synthetic corpus; returns its pipeline folder."""
    from typer.testing import CliRunner

    from a2v.recipes.tongue.cli import app, prepare
    from a2v.recipes.tongue.synthetic import make_synthetic_corpus

    raw = work / "raw"
    raw.mkdir()
    make_synthetic_corpus(raw, n_utterances=4, seconds=0.4, fps=60.0, seed=0, offset_s=0.1)
    cfg = str(ROOT / "configs" / "tongue" / "tiny.yaml")
    prepare([raw], work / "prep", 1, -1, cfg, [])
    res = CliRunner().invoke(app, ["train", "-d", str(work / "prep"), "-o", str(work / "run"), "--no-progress",
                                   "-c", cfg, "--set", f"train.max_steps={steps}"])
    if res.exit_code != 0:
        raise RuntimeError(res.output)
    return work / "run" / "pipeline"


def time_generate(pipe_dir: Path, wav: np.ndarray, seconds: list[float], threads: int,
                  done: Callable[[dict], None]) -> None:
    """Time ``generate`` at each length with ``threads`` torch threads; ``done(row)`` after each one."""
    from a2v.recipes.tongue.pipeline import TonguePipeline

    torch.set_num_threads(threads)
    pipe = TonguePipeline.from_pretrained(pipe_dir)
    calls = [0] * len(pipe.stages)
    for i, st in enumerate(pipe.stages):
        fwd = st.net.forward

        def counted(*a, _i=i, _f=fwd, **k):
            calls[_i] += 1
            return _f(*a, **k)

        st.net.forward = counted
    rows: list[dict] = []
    for sec in seconds:
        w = np.resize(wav, round(sec * 16000)).astype(np.float32)  # (S,) speech repeated/cut to `sec`
        calls[:] = [0] * len(calls)
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        video = pipe.generate(w, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"seconds": sec, "threads": threads, "frames": int(video.shape[0]), "wall_s": round(wall, 2),
                     "cpu_s": round(cpu, 2), "wall_s_per_speech_s": round(wall / sec, 2),
                     "nfe_per_stage": list(calls), "ms_per_nfe": round(1000 * wall / sum(calls), 1),
                     "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]})
        print(rows[-1], flush=True)
        done(rows[-1])


def main() -> None:
    from a2v.audio.tts import synthesize_speech
    from a2v.io import write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 2.8, 6.0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--multi-seconds", type=float, nargs="+", default=[1.0],
                    help="lengths timed with more than one thread (slow on a busy machine)")
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tongue_generate_length.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wav = synthesize_speech(TEXT)  # (S,) float32, 16 kHz, about 6.3 s
    rows: list[dict] = []

    def done(row: dict) -> None:  # results written after every row: a stopped run keeps what it measured
        rows.append(row)
        write_json_atomic(args.out, {"config": "configs/tongue/tiny.yaml", "device": "cpu", "cpu": platform.machine(),
                                     "cpu_count": os.cpu_count(), "torch": torch.__version__, "rows": rows})

    with tempfile.TemporaryDirectory(prefix="a2v-tongue-bench-") as tmp:
        pipe_dir = train_tiny(Path(tmp), args.train_steps)
        for n in args.threads:
            time_generate(pipe_dir, wav, args.seconds if n == 1 else args.multi_seconds, n, done)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
