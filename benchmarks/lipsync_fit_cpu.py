"""``a2v lipsync fit --preset cpu`` on a GRID clip: time per stage, held-out PSNR/SSIM, mouth error, sync, verdict.

Runs :func:`a2v.recipes.lipsync.fit.fit_person` with ``configs/lipsync/cpu.yaml`` (lower-face
renderer at 128 px) plus ``--set`` overrides, and writes ``benchmarks/results/lipsync_fit_cpu.json``:
seconds of each stage, the pre-fit estimate, the verdict with its measurements, and the time a
1- and a 3-minute clip would take (tracking per frame x frames + the measured steps; the training
steps do not depend on the clip length). GRID clips are 3 s: the verdict on them is expected to
be "not usable: too little video"; the numbers show what a step costs and how far the renderer gets.

    .venv/bin/python benchmarks/lipsync_fit_cpu.py --clip ../shared/data/grid/bbaf2n.mpg --threads 1 \\
        --set stage2.train.max_steps=500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "lipsync_fit_cpu.json"
# a 3 s clip minus its held-out second has 50 frames: 20-frame windows (0.8 s) give stage 1 31 windows
SHORT_CLIP = ["model.window_audio_frames=80", "model.window_video_frames=20", "data.window_audio_frames=80",
              "data.window_video_frames=20", "train.batch_size=8"]


def results_prev(path: Path, name: str) -> dict | None:
    """The earlier (not resumed) row ``name`` of the results file, if any."""
    return json.loads(path.read_text(encoding="utf-8")).get(name) if path.is_file() else None


def track_only(clip: Path, cfg: object, out: Path) -> None:
    """Time :func:`prepare_template` (detection every 5 frames + 68 landmarks per frame) on ``clip``."""
    from a2v.recipes.lipsync.template import prepare_template

    prepare_template(clip, cfg.stage2.template)  # warm-up: model loading
    t0 = time.perf_counter()
    n = len(prepare_template(clip, cfg.stage2.template))
    dt = time.perf_counter() - t0
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    results["tracking"] = {"clip": clip.name, "frames": n, "seconds": round(dt, 3), "s_per_frame": round(dt / n, 4),
                           "device": "CPU, 2 shared cores"}
    out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(results["tracking"])


def main() -> None:
    ap = argparse.ArgumentParser()
    grid = Path(os.environ.get("A2V_GRID_DIR", REPO.parent / "shared" / "data" / "grid"))
    ap.add_argument("--clip", type=Path, default=grid / "bbaf2n.mpg")
    ap.add_argument("--set", dest="sets", nargs="*", default=[], help="extra config overrides")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="grid_cpu_preset")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the fitted folder here (default: a temporary folder, deleted)")
    ap.add_argument("--resume", action="store_true", help="continue the fit in --work (e.g. with more steps)")
    ap.add_argument("--track-only", action="store_true",
                    help="only time the face tracking of --clip (seconds per frame, after a warm-up) into row 'tracking'")
    ap.add_argument("--prev", default=None, help="results row of the run being resumed (default --name)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from a2v.config import load_config
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person

    sets = SHORT_CLIP + list(args.sets)
    cfg = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "cpu.yaml", sets)
    if args.track_only:
        track_only(args.clip, cfg, args.out)
        return
    tmp = Path(tempfile.mkdtemp(prefix="a2v-fitbench-")) if args.work is None else None
    target = args.work if args.work is not None else tmp / "person"
    try:
        t0 = time.perf_counter()
        out = fit_person(args.clip, target, cfg, progress=False, device="cpu", resume=args.resume)
        wall = time.perf_counter() - t0
        rep = json.loads((out / "fit.json").read_text(encoding="utf-8"))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    sec = rep["seconds"]
    est = rep["estimate"] or {}
    prior = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    track_s_per_frame = prior.get("tracking", {}).get("s_per_frame", sec["prepare"] / rep["frames"])
    s1_per_step = sec["stage1"] / cfg.train.max_steps  # on --resume: the steps done in this run
    r_per_step = sec["renderer"] / cfg.stage2.train.max_steps
    if args.resume:
        prev = results_prev(args.out, args.prev or args.name)
        s1_per_step = (prev or {}).get("s_per_step", {}).get("stage1", s1_per_step)
        done = (prev or {}).get("renderer_steps", 0)
        row_extra = {"resumed_from": args.prev or args.name, "renderer_steps_before": done}
        r_per_step = sec["renderer"] / max(cfg.stage2.train.max_steps - done, 1)
    preset_steps = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "cpu.yaml")
    from a2v.recipes.lipsync.fit_check import holdout_start

    check_s_per_frame = sec["check"] / rep["verdict"]["metrics"]["holdout_frames"]

    def minutes(n_frames: int) -> float:
        held = n_frames - holdout_start(n_frames, preset_steps.stage2.check)
        return round((track_s_per_frame * n_frames + s1_per_step * preset_steps.train.max_steps
                      + r_per_step * preset_steps.stage2.train.max_steps + check_s_per_frame * held
                      + sec.get("estimate", 0.0)) / 60, 1)

    projected = {f"{m}_min_clip": minutes(m * 60 * 25) for m in (1, 3)}
    row = {
        "clip": args.clip.name, "frames": rep["frames"], "clip_s": rep["clip_s"], "threads": args.threads,
        "overrides": sets, "stage1_steps": cfg.train.max_steps, "renderer_steps": cfg.stage2.train.max_steps,
        "seconds": sec, "wall_s": round(wall, 1), "estimate_before_fit": est,
        "s_per_step": {"stage1": round(s1_per_step, 4), "renderer": round(r_per_step, 4)},
        "track_s_per_frame": round(track_s_per_frame, 4),
        "projected_minutes_cpu_preset_steps": projected,
        "verdict": {"usable": rep["verdict"]["usable"], "reasons": rep["verdict"]["reasons"],
                    "checks": rep["verdict"]["checks"]},
        "metrics": rep["verdict"]["metrics"],
        "device": "CPU, 2 shared cores",
    }
    results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    row["resumed"] = args.resume
    if args.resume:
        row.update(row_extra)
    results[args.name + ("_resumed" if args.resume else "")] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(json.dumps(row, indent=1, default=str))


if __name__ == "__main__":
    main()
