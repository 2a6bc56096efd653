"""Is a fitted person usable? Held-out measurements, thresholds and a verdict (our protocol; the paper has none).

The last part of the person's clip (``holdout_fraction``, at least ``min_holdout_frames``) is
kept out of both stages and measured after the fit:

- renderer: PSNR (dB) and SSIM of the rendered crop vs the real crop, drawn from the real landmarks
  (:func:`measure_renderer`; uint8 crops, data range 255);
- stage 1: MSE of the predicted mouth PCA vs the real one, as a ratio to a still mouth (all
  coefficients 0 = the speaker's mean mouth) (:func:`measure_mouth`);
- sync: :func:`a2v.metrics.sync.measure_video_sync` on a video generated for the held-out audio,
  with the real clip's own correlation and a shuffled-audio chance level beside it (:func:`measure_sync`).

:func:`make_verdict` compares them with :class:`FitCheckConfig` and says why a model fails
(too little video, too few steps). Numbers: see ``docs/lipsync.md``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import ConfigError

__all__ = ["FitCheckConfig", "holdout_start", "check_weights", "measure_renderer", "measure_mouth",
           "measure_sync", "make_verdict", "format_verdict", "seconds_per_step", "VERDICT_KEY"]

VERDICT_KEY = "verdict"  # key of the verdict in fit.json


@dataclass(frozen=True)
class FitCheckConfig:
    """Held-out split and usability thresholds of ``a2v lipsync fit`` (all ours).

    min_clip_s: documented minimum clip length (a warning below it, and the first reason given
    when a model fails). holdout_fraction / min_holdout_frames / max_holdout_frames: the clip's
    last frames kept out of training for the verdict (never more than a third of the clip). min_psnr_db / min_ssim:
    renderer reconstruction on held-out crops. max_mouth_mse_ratio: held-out mouth PCA MSE over the
    still-mouth MSE. min_sync_corr: mouth-opening / loudness correlation of the generated held-out
    video (and above the shuffled-audio chance level). min_stage1_steps / min_renderer_steps: below
    them a failure is blamed on too few steps. estimate_steps: training steps timed per stage
    before the fit to estimate its duration (0 = no estimate).
    """

    min_clip_s: float = 60.0
    holdout_fraction: float = 0.15
    min_holdout_frames: int = 25
    min_psnr_db: float = 25.0
    min_ssim: float = 0.75
    max_mouth_mse_ratio: float = 0.9
    min_sync_corr: float = 0.2
    min_stage1_steps: int = 500
    min_renderer_steps: int = 500
    max_holdout_frames: int = 250
    estimate_steps: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_fraction < 0.5 or not 1 <= self.min_holdout_frames <= self.max_holdout_frames:
            raise ConfigError("check: holdout_fraction must be in (0, 0.5) and 1 <= min_holdout_frames <= max_holdout_frames")
        if self.min_clip_s < 0 or self.estimate_steps < 0:
            raise ConfigError("check: min_clip_s and estimate_steps must be >= 0")


def holdout_start(n_frames: int, cfg: FitCheckConfig) -> int:
    """First held-out frame: the last ``holdout_fraction * F`` frames, clamped to
    [min_holdout_frames, max_holdout_frames] and at most F // 3."""
    n_held = min(max(round(cfg.holdout_fraction * n_frames), cfg.min_holdout_frames), cfg.max_holdout_frames,
                 n_frames // 3)
    return n_frames - n_held


def check_weights(renderer_cfg: Any) -> list[str]:
    """Resolve every weight file the fit will need, before any work; returns their paths.

    MissingWeightsError (one line naming the file and the setting that needs it) when one is absent:
    the dlib 68-landmark model (tracking) and, with ``lambda_vgg > 0``, the VGG19 perceptual-loss weights.
    """
    from a2v.face.detect import face_recognition_model_path

    paths = [str(face_recognition_model_path("shape_predictor_68_face_landmarks.dat"))]
    if renderer_cfg.lambda_vgg > 0:
        from a2v.gan.perceptual import VGG19_FILE
        from a2v.metrics.weights import find_checkpoint

        what = "VGG19 perceptual loss (stage2.renderer.lambda_vgg > 0; --set stage2.renderer.lambda_vgg=0 trains without it)"
        paths.append(str(find_checkpoint(VGG19_FILE, renderer_cfg.vgg_weights_path, what)))
    return paths


def measure_renderer(renderer: Any, template: Any, frames: Any, frame_ids: np.ndarray, batch_size: int = 8) -> dict:
    """PSNR (dB) and SSIM of rendered vs real crops on ``frame_ids`` (frames with a face only).

    Crops and maps are drawn as in training (the template's own landmarks); both uint8 (B,R,R,3).
    """
    import torch

    from a2v.metrics.image import psnr, ssim
    from a2v.recipes.lipsync.template import face_inputs

    ids = [int(i) for i in frame_ids if template.has_face[i]]
    if not ids:
        return {"frames": 0, "psnr_db": float("nan"), "ssim": float("nan")}
    r = renderer.cfg.resolution_px
    boxes = template.crop_boxes()  # (F,4)
    vals_p: list[torch.Tensor] = []
    vals_s: list[torch.Tensor] = []
    for b0 in range(0, len(ids), batch_size):
        part = ids[b0 : b0 + batch_size]
        got = [face_inputs(frames[i], boxes[i], template.landmarks[i], template.cfg, r) for i in part]
        maps = torch.from_numpy(np.stack([g[2] for g in got])).permute(0, 3, 1, 2)  # (B,R,R,C)->(B,C,R,R)
        real = np.stack([g[1] for g in got])  # (B,R,R,3)
        fake = renderer.render(maps, batch_size=batch_size)  # (B,3,R,R) in [-1,1]
        fake = ((fake + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # ->(B,R,R,3)
        vals_p.append(psnr(fake, real, data_range=255, reduction="none"))
        vals_s.append(ssim(fake, real, data_range=255, reduction="none"))
    p, s = torch.cat(vals_p), torch.cat(vals_s)  # (N,)
    return {"frames": len(ids), "psnr_db": float(p.clamp(max=99.0).mean()), "ssim": float(s.mean())}


def measure_mouth(pipe: Any, template: Any, wav: np.ndarray, start: int) -> dict:
    """Held-out mouth PCA error of stage 1 on frames ``start:`` (10-D standardised PCA units).

    The whole clip's audio is fed (the held-out frames get their usual context); the target is the
    template's own mouth encoded with the person's statistics. ``still_mse``: the error of a still
    mouth (all coefficients 0), the level a model must beat.
    """
    coeffs = pipe.predict_mouth(wav)  # (S,)->(F',10)
    n = min(len(coeffs), len(template))
    stats = pipe._speaker_stats(template) or pipe.features.template_stats(template.landmarks[template.has_face])
    target = pipe.features.encode_mouth(template.landmarks[start:n], stats)  # (Fh,68,2)->(Fh,10)
    pred = coeffs[start:n]  # (Fh,10)
    ok = ~np.isnan(target).any(axis=1)
    if ok.sum() == 0:
        return {"frames": 0, "mse": float("nan"), "still_mse": float("nan"), "ratio": float("nan")}
    mse = float(((pred[ok] - target[ok]) ** 2).mean())
    still = float((target[ok] ** 2).mean())
    return {"frames": int(ok.sum()), "mse": mse, "still_mse": still, "ratio": mse / still if still > 0 else float("inf")}


def measure_sync(pipe: Any, template: Any, wav: np.ndarray, start: int, sr: int = 16000) -> dict:
    """Sync of a video generated for the held-out audio (frames ``start:``), measured on its own frames.

    Returns {"sync_corr", "sync_lag_frames", "real_sync_corr" (the clip's own landmarks, same
    measure), "chance_corr" (shuffled held-out audio)}.
    """
    from a2v.metrics.sync import (
        loudness_envelope,
        measure_video_sync,
        mouth_opening,
        shuffled_baseline,
        sync_correlation,
    )

    fps = template.fps
    seg = np.asarray(wav[int(round(start * sr / fps)) :], np.float32)  # (S',)
    n = len(template) - start
    real_open = mouth_opening(template.landmarks[start:])  # (Fh,)
    env = loudness_envelope(seg, sr, fps, n)  # (Fh,)
    real_corr, _ = sync_correlation(real_open, env)
    with tempfile.TemporaryDirectory(prefix="a2v-fitcheck-") as tmp:
        out = Path(tmp) / "heldout.mp4"
        pipe.generate(seg, out, progress=False)
        got = measure_video_sync(out, (seg, sr), detector=template.cfg.detector, progress=False)
    chance = shuffled_baseline(real_open, env) if n >= 20 else float("nan")
    return {"sync_corr": got["sync_corr"], "sync_lag_frames": got["sync_lag_frames"],
            "face_frames": got["n_face_frames"], "frames": got["n_frames"],
            "real_sync_corr": real_corr, "chance_corr": chance}


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (strict JSON for fit.json)."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _ok(value: float, good: Callable[[float], bool]) -> bool:
    return value is not None and math.isfinite(value) and good(value)


def make_verdict(metrics: dict, cfg: FitCheckConfig, *, clip_s: float, stage1_steps: int, renderer_steps: int) -> dict:
    """{"usable": bool, "checks": [{name, value, threshold, ok}], "reasons": [str]} from the held-out metrics.

    usable = every check passes. When one fails, ``reasons`` names the likely causes: a clip
    shorter than ``min_clip_s``, fewer steps than ``min_stage1_steps`` / ``min_renderer_steps``.
    """
    r, m, s = metrics.get("renderer", {}), metrics.get("mouth", {}), metrics.get("sync", {})
    checks = [
        {"name": "renderer PSNR (dB)", "value": r.get("psnr_db"), "threshold": f">= {cfg.min_psnr_db:g}",
         "ok": _ok(r.get("psnr_db"), lambda v: v >= cfg.min_psnr_db)},
        {"name": "renderer SSIM", "value": r.get("ssim"), "threshold": f">= {cfg.min_ssim:g}",
         "ok": _ok(r.get("ssim"), lambda v: v >= cfg.min_ssim)},
        {"name": "mouth MSE / still-mouth MSE", "value": m.get("ratio"), "threshold": f"<= {cfg.max_mouth_mse_ratio:g}",
         "ok": _ok(m.get("ratio"), lambda v: v <= cfg.max_mouth_mse_ratio)},
    ]
    if s:
        chance = s.get("chance_corr")
        floor = max(cfg.min_sync_corr, chance if chance is not None and math.isfinite(chance) else -1.0)
        checks.append({"name": "sync correlation (generated)", "value": s.get("sync_corr"),
                       "threshold": f">= {floor:.3g} (min {cfg.min_sync_corr:g}, chance {chance:.3g})"
                       if chance is not None and math.isfinite(chance) else f">= {floor:.3g}",
                       "ok": _ok(s.get("sync_corr"), lambda v: v >= floor)})
    usable = all(c["ok"] for c in checks)
    reasons: list[str] = []
    if not usable:
        if clip_s < cfg.min_clip_s:
            reasons.append(f"too little video: {clip_s:.1f} s, at least {cfg.min_clip_s:g} s are needed")
        if stage1_steps < cfg.min_stage1_steps:
            reasons.append(f"too few stage 1 steps: {stage1_steps} (at least {cfg.min_stage1_steps})")
        if renderer_steps < cfg.min_renderer_steps:
            reasons.append(f"too few renderer steps: {renderer_steps} (at least {cfg.min_renderer_steps})")
        failed = [c["name"] for c in checks if not c["ok"]]
        reasons.append("below threshold: " + ", ".join(failed))
    return finite_or_none({"usable": usable, "checks": checks, "reasons": reasons, "metrics": metrics})


def format_verdict(v: dict) -> str:
    """The verdict as a few printable lines (one per check, then the conclusion)."""
    lines = []
    for c in v["checks"]:
        val = c["value"]
        shown = f"{val:.3f}" if isinstance(val, int | float) and math.isfinite(val) else "n/a (not measurable)"
        lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {shown} (needs {c['threshold']})")
    if v["usable"]:
        lines.append("verdict: usable")
    else:
        lines.append("verdict: NOT USABLE: " + "; ".join(v["reasons"]))
    return "\n".join(lines)


def seconds_per_step(run: Callable[[int, Path], Path], steps: int) -> float:
    """Wall-clock seconds per training step, set-up excluded.

    ``run(n, out_dir)`` trains n steps into a scratch folder, logging every step, and returns the
    run's ``metrics.jsonl`` (:class:`a2v.train.tracking.RunLog`: ``time_s`` per logged step). One
    run of ``1 + steps`` steps; the first step (lazy initialisation) is left out.
    """
    import json

    with tempfile.TemporaryDirectory(prefix="a2v-estimate-") as tmp:
        log = run(1 + steps, Path(tmp))
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    times = {int(r["step"]): float(r["time_s"]) for r in rows if "time_s" in r}
    if 1 not in times or 1 + steps not in times:
        raise ConfigError(f"timing run logged steps {sorted(times)}, expected 1 and {1 + steps}")
    return (times[1 + steps] - times[1]) / steps
