"""The face recipe's tiny task end to end through the CLI, as a user runs it (docs/face.md "Tiny task").

    python benchmarks/face_tiny_task_cli.py [--work DIR]

Runs, each as its own `python -m a2v.cli` process with one torch thread:
``face tiny-data`` (4 LFW faces x 4 eSpeak voices), ``face train`` for the encoder, decoder and SR
stages with configs/face/tiny.yaml, ``face generate`` (4 faces per speaker from its held-out sentence)
and ``face evaluate`` on the held-out sentences (guidance 0, 1, 2). Scores the 16 generated faces:
how many dlib's HOG detector finds (pictures enlarged to 160 px) and how many are nearest, in dlib's
identity embedding, to their own speaker's true face among the 4 (chance: 4 of 16). Writes
benchmarks/results/face_tiny_task_cli.{json,png} (rows: true face, then the 4 samples).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "face" / "tiny.yaml"
PER_SPEAKER = 4


def run(args: list[str], env: dict[str, str], timings: dict[str, float], name: str) -> str:
    """One CLI command in its own process; its wall time goes to ``timings[name]``; stops on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "a2v.cli", *args], env=env, capture_output=True, text=True,
                          check=False)
    timings[name] = round(time.perf_counter() - t0, 1)
    out = proc.stdout + proc.stderr
    print(f"$ a2v {' '.join(args)}\n{out.strip()}\n({timings[name]} s)", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"a2v {args[0]} {args[1]} failed with exit code {proc.returncode}")
    return out


def main() -> None:
    import cv2

    from a2v.config import load_config
    from a2v.io import write_json_atomic
    from a2v.recipes.face.check import faces_found
    from a2v.recipes.face.config import FaceConfig
    from a2v.recipes.face.data import read_talking_faces
    from a2v.recipes.face.embedding import FaceEmbedder
    from a2v.video import load_image, write_png

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="a2v-face-tiny-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    data, model, timings = work / "data", work / "model", {}
    cfg = load_config(FaceConfig, CONFIG)
    t_all = time.perf_counter()
    run(["face", "tiny-data", "-o", str(data)], env, timings, "tiny-data")
    logs = {}
    for stage in ("encoder", "decoder", "sr"):
        logs[stage] = run(["face", "train", "--stage", stage, "-d", str(data / "train"), "-o", str(work / "runs" / stage),
                           "--model-dir", str(model), "--config", str(CONFIG), "--no-progress"], env, timings,
                          f"train {stage}")
    speakers = sorted(p.stem for p in (data / "voices").glob("spk*.wav"))
    gen = {}
    for spk in speakers:
        out = work / f"{spk}.png"
        run(["face", "generate", "-m", str(model), "--audio", str(data / "voices" / f"{spk}.wav"), "--num",
             str(PER_SPEAKER), "-o", str(out), "--no-progress"], env, timings, f"generate {spk}")
        strip = load_image(out)  # (S,N*S,3)
        gen[spk] = np.stack(np.split(strip, PER_SPEAKER, axis=1))  # (S,N*S,3)->(N,S,S,3)
    eval_out = run(["face", "evaluate", "-m", str(model), "-d", str(data / "test"), "--guidance", "0,1,2",
                    "-o", str(work / "eval.json"), "--no-progress"], env, timings, "evaluate")
    seconds = round(time.perf_counter() - t_all, 1)

    # score the generated faces: detector, and nearest true face in dlib's identity embedding
    test = read_talking_faces(data / "test")
    size = next(iter(gen.values())).shape[1]
    true = np.stack([cv2.resize(t, (size, size), interpolation=cv2.INTER_AREA) for t in test.images])  # (K,S,S,3)
    embed = FaceEmbedder(cfg.embedding)
    true_emb = embed(true)  # (K,D)
    samples = np.concatenate([gen[s] for s in speakers])  # (K*N,S,S,3)
    own = np.repeat(np.arange(len(speakers)), PER_SPEAKER)  # (K*N,)
    found = faces_found(samples)
    cos = embed(samples) @ true_emb.T  # (K*N,K)
    nearest = cos.argmax(1)
    own_cos = cos[np.arange(len(own)), own]
    other_cos = (cos.sum(1) - own_cos) / (len(speakers) - 1)
    import json

    check = json.loads((work / "runs" / "decoder" / "face_check.json").read_text())
    rows = json.loads((work / "eval.json").read_text())["rows"]
    result = {
        "task": __doc__.split("\n\n")[2].strip(),
        "config": {**{s: {"max_steps": getattr(cfg, s).max_steps, "batch_size": getattr(cfg, s).batch_size,
                          "lr": getattr(cfg, s).lr, "ema_decay": getattr(cfg, s).ema_decay}
                      for s in ("train_encoder", "train_decoder", "train_sr")},
                   "sample": {"sampler": cfg.sample.sampler, "guidance_w": cfg.sample.guidance_w,
                              "sr_sampler": cfg.sample.sr_sampler, "sr_num_steps": cfg.sample.sr_num_steps}},
        "generated": {"faces_found": int(found.sum()), "of": len(found),
                      "nearest_true_face_is_own": int((nearest == own).sum()),
                      "identity_cosine_own": round(float(own_cos.mean()), 4),
                      "identity_cosine_other_speakers": round(float(other_cos.mean()), 4),
                      "size_px": int(size), "guidance": cfg.sample.guidance_w},
        "true_faces_found": int(faces_found(true).sum()),
        "decoder_check_after_training": check,
        "evaluate_rows": [{k: r[k] for k in ("guidance", "n", "identity_cosine", "identity_cosine_random_pair",
                                            "n_no_face_generated")} for r in rows],
        "evaluate_output": eval_out.rstrip().splitlines(),
        "seconds_per_command": timings,
        "seconds_total": seconds,
        "torch_threads": 1,
    }
    out = REPO / "benchmarks" / "results" / "face_tiny_task_cli.json"
    write_json_atomic(out, result)
    grid = np.concatenate([np.concatenate([true[k], *gen[s]], axis=1) for k, s in enumerate(speakers)], axis=0)
    write_png(out.with_suffix(".png"), cv2.resize(grid, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST))
    print(json.dumps({k: result[k] for k in ("generated", "seconds_total")}, indent=1))


if __name__ == "__main__":
    main()
