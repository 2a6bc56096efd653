"""Fit one person end to end (Zheng et al. 2020, arXiv:2002.08700, §3): their video -> a pipeline folder.

    path = fit_person("anna.mp4", "models/lipsync/anna", cfg)           # cfg: LipSyncConfig
    LipSyncPipeline.from_pretrained(path).generate(wav, "out.mp4")

Steps: (1) track the face and its 68 landmarks in the video (:func:`prepare_template`);
(2) write it as a one-item prepared dataset (MFCC 100 Hz + landmarks 25 fps) and train stage 1
on it (:func:`a2v.recipes.lipsync.train.train_mouth`, ``tcn_gan`` by default); (3) train the
pix2pixHD renderer on the video's own (facial map, crop) pairs (:class:`RendererTask`; the
whole face, or only the lower face with ``template.region: mouth``); (4) measure both stages on the
clip's held-out end and give a verdict (:mod:`a2v.recipes.lipsync.fit_check`); (5) save the
stage 1 pipeline with the renderer and the video as its template into ``out_dir``.
Before training, every weight file is checked and the time of both stages on this device is
estimated from a few timed steps. Intermediate runs stay in ``out_dir/work`` (template track,
checkpoints, logs; ``resume=True`` continues them); ``out_dir/fit.json`` reports, verdict included.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from a2v.config import to_dict
from a2v.device import resolve_device
from a2v.errors import InputError
from a2v.io import write_json_atomic
from a2v.recipes.lipsync.config import LipSyncConfig, Stage2Config
from a2v.recipes.lipsync.fit_check import (
    VERDICT_KEY,
    FitCheckConfig,
    check_weights,
    format_verdict,
    holdout_start,
    make_verdict,
    measure_mouth,
    measure_renderer,
    measure_sync,
    seconds_per_step,
)
from a2v.recipes.lipsync.renderer import Renderer, RendererConfig, RendererTask
from a2v.recipes.lipsync.template import Template, TemplatePairs, map_channels, open_frames
from a2v.train import TrainConfig

__all__ = ["Stage2Config", "fit_person", "tiny_stage2", "train_renderer", "write_person_dataset"]


def tiny_stage2() -> Stage2Config:
    """CPU-sized stage 2 (smoke tests, demos): 64 px, a few channels, 2 steps, no VGG, one timed step."""
    return Stage2Config(
        check=FitCheckConfig(estimate_steps=1),
        renderer=RendererConfig(resolution_px=64, ngf=8, ndf=8, n_downsample_global=2, n_blocks_global=1,
                                num_D=2, n_layers_D=2, lambda_vgg=0.0),
        train=TrainConfig(max_steps=2, batch_size=2, log_every=1, ckpt_every=0, tensorboard=False),
        max_pairs=16,
    )


def _item_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) or "person"


def write_person_dataset(
    template: Template, audio_path: str | Path, data_dir: str | Path, item_id: str, n_frames: int | None = None
) -> Path:
    """One-item prepared dataset (``manifest.jsonl`` + one WebDataset shard) from a tracked video.

    Members: ``mfcc.npy`` float32 (T,13) 100 Hz of the video's audio, ``landmarks.npy`` float32
    (F,68,2) px at the template fps (NaN rows = no face), ``meta.json``. ``n_frames``: keep only the
    first video frames (and their 4 x audio frames), e.g. to hold the end of the clip out.
    """
    from a2v.audio import load_audio, mfcc
    from a2v.data.shards import MANIFEST, ShardWriter, append_jsonl

    out = Path(data_dir)
    if out.exists():
        shutil.rmtree(out)  # derived data of an earlier attempt; rebuilt from the video
    wav = load_audio(audio_path, 16000)  # (S,)
    feats = mfcc(wav, 16000)  # (S,)->(T,13)
    n = len(template) if n_frames is None else min(int(n_frames), len(template))
    lm = template.landmarks[:n]  # (F,68,2)
    if n < len(template):
        feats = feats[: 4 * n]  # (T,13)->(4F,13): 100 Hz audio frames of the kept video frames
    meta = {"fps": template.fps, "n_frames": n, "duration_s": n / template.fps, "audio_sr": 16000}
    row = {"id": item_id, "source": str(Path(audio_path).resolve()), "n_frames": n, "fps": template.fps,
           "duration_s": n / template.fps, "audio_sr": 16000}

    def on_close(shard: str, keys: list[str]) -> None:
        append_jsonl(out / MANIFEST, [{**row, "shard": shard}])

    with ShardWriter(out, "0000", on_close=on_close) as w:
        w.add(item_id, {"mfcc.npy": feats, "landmarks.npy": lm, "meta.json": meta})
    return out


def train_renderer(
    template: Template, cfg: Stage2Config, out_dir: str | Path, progress: bool = True, *,
    resume: bool = False, frame_ids: np.ndarray | None = None,
) -> tuple[Renderer, dict]:
    """Train the pix2pixHD renderer on the template's (facial map, crop) pairs; returns (renderer, report).

    The renderer's ``input_channels`` follow the template's map layout; the crops are the face or
    the lower face (``template.cfg.region``). ``frame_ids``: the frames to train on (default all).
    Checkpoints and logs go to ``out_dir`` (:func:`a2v.train.fit`; ``resume`` continues them).
    """
    from a2v.train import fit

    rcfg = replace(cfg.renderer, input_channels=map_channels(template.cfg.map_layout))
    renderer = Renderer(rcfg)
    with open_frames(template, progress=progress) as frames:
        pairs = TemplatePairs(template, frames, rcfg.resolution_px, cfg.max_pairs, frame_ids)
        res = fit(RendererTask(renderer), pairs, cfg.train, out_dir, progress=progress, run_config=cfg, resume=resume)
    renderer.to("cpu")
    return renderer, {"steps": res.step, "pairs": len(pairs), "train_metrics": res.train_metrics,
                      "frames_on_disk": frames.on_disk}


def _short(train: Any, steps: int) -> Any:
    """A training config for ``steps`` timed steps: every step logged, no eval, no tensorboard."""
    return replace(train, max_steps=steps, ckpt_every=0, eval_every=0, sample_every=0, tensorboard=False,
                   log_every=1)


def _estimate(data_dir: Path, s1cfg: LipSyncConfig, models: tuple[str, ...], template: Template,
              stage2: Stage2Config, train_ids: np.ndarray, steps: int) -> dict:
    """Seconds per step of each stage on this device (a few real steps timed) and the extrapolated totals."""
    from a2v.recipes.lipsync.train import train_mouth

    def run1(n: int, d: Path) -> Path:
        train_mouth(data_dir, d, replace(s1cfg, train=_short(s1cfg.train, n)), models=models[:1], progress=False)
        return d / models[0] / "train" / "metrics.jsonl"

    def run2(n: int, d: Path) -> Path:
        train_renderer(template, replace(stage2, train=_short(stage2.train, n)), d, progress=False, frame_ids=train_ids)
        return d / "metrics.jsonl"

    s1, s2 = seconds_per_step(run1, steps), seconds_per_step(run2, steps)
    return {"stage1_s_per_step": s1, "renderer_s_per_step": s2,
            "stage1_s": s1 * s1cfg.train.max_steps * len(models), "renderer_s": s2 * stage2.train.max_steps}


def _check(pipe: Any, template: Template, wav: np.ndarray, start: int) -> dict:
    """Held-out measurements of a fitted pipeline (:mod:`a2v.recipes.lipsync.fit_check`)."""
    from a2v.errors import A2VError

    metrics: dict[str, Any] = {"holdout_frames": len(template) - start, "holdout_start": start}
    with open_frames(template) as frames:
        metrics["renderer"] = measure_renderer(pipe.renderer, template, frames, np.arange(start, len(template)))
    metrics["mouth"] = measure_mouth(pipe, template, wav, start)
    try:
        metrics["sync"] = measure_sync(pipe, template, wav, start)
    except A2VError as e:  # e.g. no face found in the generated video: the model draws no face
        metrics["sync"] = {"sync_corr": float("nan"), "error": str(e).splitlines()[0]}
    return metrics


def fit_person(
    video: str | Path,
    out_dir: str | Path,
    cfg: LipSyncConfig,
    progress: bool = True,
    *,
    stage2: Stage2Config | None = None,
    models: tuple[str, ...] = ("tcn_gan",),
    device: str = "auto",
    resume: bool = False,
    check: bool = True,
) -> Path:
    """Prepare ``video`` (one person speaking, with sound), train both stages and judge them; returns ``out_dir``.

    cfg: stage 1 settings (``holdout_*`` are ignored: the held-out part is the clip's end, ``stage2.check``).
    stage2: renderer/template/check settings (default ``cfg.stage2``; paper preset = full-size renderer).
    models: stage 1 architectures to train; the first is the one saved in ``out_dir``.
    device: where face detection runs ("auto" = CUDA when present); training uses the loop's device.
    resume: continue an unfinished or not-usable fit from ``out_dir/work`` (more steps: raise
    ``train.max_steps``). check: hold out the clip's end and write a verdict (False: train on all
    frames, no verdict). The verdict is ``fit.json["verdict"]``; a pipeline judged not usable is
    refused by :meth:`LipSyncPipeline.from_pretrained` unless ``allow_unusable=True``.
    """
    from a2v.audio import load_audio
    from a2v.cliutil import console
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.recipes.lipsync.template import prepare_template
    from a2v.recipes.lipsync.train import train_mouth
    from a2v.video import probe, require_audio

    t0 = time.perf_counter()
    src = Path(video)
    if not src.is_file():
        raise InputError(f"video {src} not found (give a clip of the person speaking)")
    info = probe(src)
    require_audio(info, src)
    if not models:
        raise InputError("fit needs at least one stage 1 model (e.g. models=('tcn_gan',))")
    out = Path(out_dir)
    work = out / "work"
    if not resume and (out / "pipeline.json").exists():
        raise InputError(f"{out} already holds a fitted pipeline: choose a new output folder, delete it, "
                         "or continue its training with --resume")
    if not resume and work.exists():
        raise InputError(f"{out} holds an unfinished fit ({work}): continue it with --resume or delete the folder")
    stage2 = stage2 or cfg.stage2
    chk = stage2.check
    check_weights(stage2.renderer)  # every weight file, before any tracking or training
    if info.duration_s < chk.min_clip_s:
        console.print(f"warning: {src} is {info.duration_s:.1f} s long; a usable model needs at least "
                      f"{chk.min_clip_s:g} s of the person speaking (expect the verdict 'not usable')")
    device = resolve_device(device)
    tcfg = replace(stage2.template, fps=cfg.data.video_fps)
    if resume and (work / "template" / "template.json").is_file():
        template = Template.load(work / "template")
        if Path(template.source).resolve() != src.resolve() or template.cfg != tcfg:
            raise InputError(f"{work} was fitted on {template.source} with other template settings: "
                             "resume with the same --video and config, or delete the folder")
    else:
        template = prepare_template(src, tcfg, device=device, progress=progress)
        template.save(work / "template", copy_source=False)
    item = _item_id(src)
    template.speaker = item
    n = len(template)
    clip_s = n / template.fps
    start = holdout_start(n, chk) if check else n
    data_dir = write_person_dataset(template, src, work / "data", item, n_frames=start)
    s1cfg = replace(cfg, data=replace(cfg.data, holdout_fraction=0.0, holdout_ids=()))
    train_ids = np.arange(start)
    estimate = None
    t_prep = time.perf_counter()
    try:
        if chk.estimate_steps > 0:
            estimate = _estimate(data_dir, s1cfg, models, template, stage2, train_ids, chk.estimate_steps)
            console.print(f"estimated training time on this device: stage 1 {estimate['stage1_s'] / 60:.1f} min "
                          f"({s1cfg.train.max_steps} steps x {len(models)} model(s), "
                          f"{estimate['stage1_s_per_step']:.3g} s/step), renderer {estimate['renderer_s'] / 60:.1f} min "
                          f"({stage2.train.max_steps} steps, {estimate['renderer_s_per_step']:.3g} s/step)")
        t1 = time.perf_counter()
        paths = train_mouth(data_dir, work / "stage1", s1cfg, models=models, progress=progress, resume=resume)
        t2 = time.perf_counter()
        renderer, rep = train_renderer(template, stage2, work / "renderer", progress=progress, resume=resume,
                                       frame_ids=train_ids)
    except BaseException:
        console.print(f"fit stopped; its work folder {work} is kept: continue with --resume or delete it")
        raise
    t3 = time.perf_counter()
    pipe = LipSyncPipeline.from_pretrained(paths[models[0]])
    pipe.renderer, pipe.template = renderer, template
    verdict = None
    if check:
        metrics = _check(pipe, template, load_audio(src, 16000), start)
        s1_steps = int(s1cfg.train.max_steps)
        verdict = make_verdict(metrics, chk, clip_s=clip_s, stage1_steps=s1_steps, renderer_steps=int(rep["steps"]))
    t4 = time.perf_counter()
    # fit.json (with the verdict) first: a pipeline folder is never readable without its verdict
    write_json_atomic(out / "fit.json", {
        "video": str(src.resolve()), "speaker": item, "frames": n, "clip_s": clip_s,
        "frames_without_face": int((~template.has_face).sum()), "stage1_models": {k: str(v) for k, v in paths.items()},
        "saved_model": models[0], "renderer": rep, "region": template.cfg.region, "estimate": estimate,
        "seconds": {"prepare": round(t_prep - t0, 3), "estimate": round(t1 - t_prep, 3), "stage1": round(t2 - t1, 3),
                    "renderer": round(t3 - t2, 3), "check": round(t4 - t3, 3)},
        "stage2_config": to_dict(stage2), VERDICT_KEY: verdict,
    })
    pipe.save_pretrained(out)
    if verdict is not None:
        console.print(format_verdict(verdict))
    return out
