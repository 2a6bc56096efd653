"""Lip-sync end to end: frames/s with preprocessing counted, and peak memory vs audio length.

Speed: a template clip (scikit-image's astronaut sliding a few px per frame, 25 fps) is tracked
(dlib HOG + 68 landmarks), the stage 1 TCN predicts the mouth from speech, the pix2pixHD renderer
draws each face crop, which is pasted back and encoded with the audio (H.264). Every run is a
fresh process and counts all of it: ``total_fps = frames / (template tracking + generate)``.
Renderers are untrained at their full size (speed does not depend on the weights):
256 px = pix2pixHD global generator (ngf 64, 4 downsamplings, 9 blocks); 512 px = local
enhancer around it (pix2pixHD ``--netG local --ngf 32``).
Memory: the same pipeline with a small renderer on ``--short-s`` vs ``--long-min`` of speech;
peak resident set size (RSS) of each process; the goal is long <= 1.2 x short.
Result: benchmarks/results/lipsync_e2e.json.

    python benchmarks/lipsync_e2e.py [--speed-s 2] [--short-s 10] [--long-min 10] [--skip-long]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "lipsync_e2e.json"
SR = 16000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB


def make_template(path: Path, size: int, seconds: float) -> None:
    """Silent-ish template: the astronaut (face ~ 0.3 x size) sliding a few px per frame, 25 fps."""
    import cv2
    import numpy as np
    from skimage import data

    from a2v.video import VideoWriter

    img = cv2.resize(data.astronaut()[0:400, 60:460], (size + 16, size + 16), interpolation=cv2.INTER_AREA)
    with VideoWriter(path, 25, audio=np.zeros(int(seconds * SR), np.float32), audio_sr=SR, preset="fast") as w:
        for i in range(int(round(seconds * 25))):
            dx = int(round(4 + 3 * np.sin(i / 5)))
            w.write(np.ascontiguousarray(img[4 : 4 + size, dx : dx + size]))


def make_speech(path: Path, seconds: float) -> None:
    import numpy as np

    from a2v.audio import save_audio, synthesize_speech

    speech = synthesize_speech("The quick brown fox jumps over the lazy dog, again and again.", sr=SR)
    save_audio(path, np.resize(speech, int(seconds * SR)).astype(np.float32), SR)


def build_pipeline(folder: Path, template_path: Path, renderer_cfg: dict, min_face_px: float = 80.0) -> None:
    """Untrained paper-size stage 1 + a renderer of ``renderer_cfg`` + the tracked template -> ``folder``."""
    import numpy as np

    from a2v.audio import load_audio, mfcc
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.data import LipSyncItem, MouthFeatures
    from a2v.recipes.lipsync.mouth_model import build_generator
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.recipes.lipsync.renderer import Renderer, RendererConfig
    from a2v.recipes.lipsync.template import TemplateConfig, prepare_template

    cfg = LipSyncConfig()
    tmpl = prepare_template(template_path, TemplateConfig(min_face_px=min_face_px))
    rng = np.random.default_rng(0)
    lm = tmpl.landmarks.copy()
    lm[:, 48:68] += rng.normal(0, 1.5, lm[:, 48:68].shape)  # some mouth motion for the PCA
    feats = mfcc(load_audio(template_path, SR), SR)
    features = MouthFeatures(cfg.data).fit([LipSyncItem("person", "person", feats, lm.astype(np.float32))])
    tmpl.speaker = "person"
    renderer = Renderer(RendererConfig(**renderer_cfg, lambda_vgg=0.0), for_training=False)
    LipSyncPipeline(build_generator(cfg.model), cfg, features, None, renderer, tmpl).save_pretrained(folder)


def child(model: str, audio: str, template: str, out: str, threads: str = "0") -> dict:
    """One end-to-end run in this fresh process: track the template, generate; timings + peak RSS."""
    import torch

    if int(threads) > 0:
        torch.set_num_threads(int(threads))  # a shared CPU: busy-waiting extra threads slow torch down

    from a2v.audio import load_audio
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.recipes.lipsync.template import prepare_template

    base = _peak_rss_mb()
    t0 = time.perf_counter()
    pipe = LipSyncPipeline.from_pretrained(model)
    wav = load_audio(audio, SR)
    t1 = time.perf_counter()
    speaker = pipe.template.speaker
    pipe.template = prepare_template(template, pipe.template.cfg)  # preprocessing, counted
    pipe.template.speaker = speaker
    t2 = time.perf_counter()
    rep = pipe.generate(wav, out, progress=False)
    t3 = time.perf_counter()
    n = rep["frames"]
    return {"frames": n, "audio_s": round(len(wav) / SR, 2), "resolution_px": rep["resolution_px"],
            "load_s": round(t1 - t0, 2), "template_prepare_s": round(t2 - t1, 2), "generate_s": round(t3 - t2, 2),
            "total_fps": round(n / (t3 - t0), 3), "generate_fps": round(n / (t3 - t2), 3),
            "renderer_params_m": round(sum(p.numel() for p in pipe.renderer.generator.parameters()) / 1e6, 2),
            "torch_threads": torch.get_num_threads(), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "peak_rss_mb_after_import": round(base, 1)}


def run_child(model: Path, audio: Path, template: Path, out: Path, threads: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", str(model), str(audio), str(template), str(out), str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed-s", type=float, default=2.0, help="speech length of the speed runs (s)")
    ap.add_argument("--template-s", type=float, default=4.0, help="template clip length (s)")
    ap.add_argument("--short-s", type=float, default=10.0)
    ap.add_argument("--long-min", type=float, default=10.0)
    ap.add_argument("--skip-long", action="store_true", help="skip the memory runs")
    ap.add_argument("--skip-speed", action="store_true", help="skip the speed runs")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the runs (0 = torch default)")
    ap.add_argument("--mem-renderer-px", type=int, default=128, help="renderer side of the memory runs")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    import torch

    from a2v.io import write_json_atomic

    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    result: dict = {**old, "device": "cpu", "cpu": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "cpu_count_visible": torch.get_num_threads(),
                    "note": "untrained weights at full size; CPU shared with other jobs while measured"}
    with tempfile.TemporaryDirectory(prefix="a2v-lipsync-bench-") as tmp:
        d = Path(tmp)
        tpl = d / "template.mp4"
        if not args.skip_speed:
            make_template(tpl, 512, args.template_s)
            make_speech(d / "speed.wav", args.speed_s)
        speed_cfgs = {
            256: {"resolution_px": 256},
            512: {"resolution_px": 512, "ngf": 32},
        }
        if not args.skip_speed:
            result["speed"] = []
            result["speed_audio_s"] = args.speed_s
        for res, rc in speed_cfgs.items() if not args.skip_speed else ():
            build_pipeline(d / f"m{res}", tpl, rc)
            r = run_child(d / f"m{res}", d / "speed.wav", tpl, d / f"o{res}.mp4", args.threads)
            r["renderer"] = rc
            result["speed"].append(r)
            print(json.dumps(r), flush=True)
            write_json_atomic(RESULTS, result)
        if not args.skip_long:
            small = d / "small.mp4"
            make_template(small, 256, args.template_s)
            mem_cfg = {"resolution_px": args.mem_renderer_px, "ngf": 16, "n_blocks_global": 3}
            build_pipeline(d / "mem", small, mem_cfg, min_face_px=60)
            runs = []
            for name, secs in (("short", args.short_s), ("long", args.long_min * 60)):
                make_speech(d / f"{name}.wav", secs)
                r = run_child(d / "mem", d / f"{name}.wav", small, d / f"{name}.mp4", args.threads)
                r["run"] = name
                runs.append(r)
                print(json.dumps(r), flush=True)
            result["memory"] = {
                "renderer": mem_cfg, "template_px": 256, "torch_threads": args.threads or "default",
                "runs": runs, "ratio_long_to_short": round(runs[1]["peak_rss_mb"] / runs[0]["peak_rss_mb"], 3),
                "goal_ratio": 1.2,
            }
    write_json_atomic(RESULTS, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
