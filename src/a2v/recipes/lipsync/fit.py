"""Fit one person end to end (Zheng et al. 2020, arXiv:2002.08700, §3): their video -> a pipeline folder.

    path = fit_person("anna.mp4", "models/lipsync/anna", cfg)           # cfg: LipSyncConfig
    LipSyncPipeline.from_pretrained(path).generate(wav, "out.mp4")

Steps: (1) track the face and its 68 landmarks in the video (:func:`prepare_template`);
(2) write it as a one-item prepared dataset (MFCC 100 Hz + landmarks 25 fps) and train stage 1
on it (:func:`a2v.recipes.lipsync.train.train_mouth`, ``tcn_gan`` by default); (3) train the
pix2pixHD renderer on the video's own (facial map, face crop) pairs (:class:`RendererTask`);
(4) save the stage 1 pipeline with the renderer and the video as its template into ``out_dir``.
Intermediate runs stay in ``out_dir/work`` (checkpoints, logs); ``out_dir/fit.json`` reports.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

from a2v.config import to_dict
from a2v.device import resolve_device
from a2v.errors import InputError
from a2v.io import write_json_atomic
from a2v.recipes.lipsync.config import LipSyncConfig, Stage2Config
from a2v.recipes.lipsync.renderer import Renderer, RendererConfig, RendererTask
from a2v.recipes.lipsync.template import Template, TemplatePairs, map_channels, open_frames
from a2v.train import TrainConfig

__all__ = ["Stage2Config", "fit_person", "tiny_stage2", "train_renderer", "write_person_dataset"]


def tiny_stage2() -> Stage2Config:
    """CPU-sized stage 2 (smoke tests, demos): 64 px, a few channels, 2 steps, no VGG."""
    return Stage2Config(
        renderer=RendererConfig(resolution_px=64, ngf=8, ndf=8, n_downsample_global=2, n_blocks_global=1,
                                num_D=2, n_layers_D=2, lambda_vgg=0.0),
        train=TrainConfig(max_steps=2, batch_size=2, log_every=1, ckpt_every=0, tensorboard=False),
        max_pairs=16,
    )


def _item_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) or "person"


def write_person_dataset(template: Template, audio_path: str | Path, data_dir: str | Path, item_id: str) -> Path:
    """One-item prepared dataset (``manifest.jsonl`` + one WebDataset shard) from a tracked video.

    Members: ``mfcc.npy`` float32 (T,13) 100 Hz of the video's audio, ``landmarks.npy`` float32
    (F,68,2) px at the template fps (NaN rows = no face), ``meta.json``.
    """
    from a2v.audio import load_audio, mfcc
    from a2v.data.shards import MANIFEST, ShardWriter, append_jsonl

    out = Path(data_dir)
    if out.exists():
        shutil.rmtree(out)  # derived data of an earlier attempt; rebuilt from the video
    wav = load_audio(audio_path, 16000)  # (S,)
    feats = mfcc(wav, 16000)  # (S,)->(T,13)
    n = len(template)
    meta = {"fps": template.fps, "n_frames": n, "duration_s": n / template.fps, "audio_sr": 16000}
    row = {"id": item_id, "source": str(Path(audio_path).resolve()), "n_frames": n, "fps": template.fps,
           "duration_s": n / template.fps, "audio_sr": 16000}

    def on_close(shard: str, keys: list[str]) -> None:
        append_jsonl(out / MANIFEST, [{**row, "shard": shard}])

    with ShardWriter(out, "0000", on_close=on_close) as w:
        w.add(item_id, {"mfcc.npy": feats, "landmarks.npy": template.landmarks, "meta.json": meta})
    return out


def train_renderer(
    template: Template, cfg: Stage2Config, out_dir: str | Path, progress: bool = True
) -> tuple[Renderer, dict]:
    """Train the pix2pixHD renderer on the template's (facial map, face crop) pairs; returns (renderer, report).

    The renderer's ``input_channels`` follow the template's map layout. Checkpoints and logs go
    to ``out_dir`` (:func:`a2v.train.fit`).
    """
    from a2v.train import fit

    rcfg = replace(cfg.renderer, input_channels=map_channels(template.cfg.map_layout))
    renderer = Renderer(rcfg)
    with open_frames(template, progress=progress) as frames:
        pairs = TemplatePairs(template, frames, rcfg.resolution_px, cfg.max_pairs)
        res = fit(RendererTask(renderer), pairs, cfg.train, out_dir, progress=progress, run_config=cfg)
    renderer.to("cpu")
    return renderer, {"steps": res.step, "pairs": len(pairs), "train_metrics": res.train_metrics,
                      "frames_on_disk": frames.on_disk}


def fit_person(
    video: str | Path,
    out_dir: str | Path,
    cfg: LipSyncConfig,
    progress: bool = True,
    *,
    stage2: Stage2Config | None = None,
    models: tuple[str, ...] = ("tcn_gan",),
    device: str = "auto",
) -> Path:
    """Prepare ``video`` (one person speaking, with sound) and train both stages; returns ``out_dir``.

    cfg: stage 1 settings (the person's clip is not held out: ``holdout_*`` are ignored).
    stage2: renderer/template settings (default ``cfg.stage2``; the paper preset is the full-size renderer).
    models: stage 1 architectures to train; the first is the one saved in ``out_dir``.
    device: where face detection runs ("auto" = CUDA when present); training uses the loop's device.
    """
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.recipes.lipsync.template import prepare_template
    from a2v.recipes.lipsync.train import train_mouth
    from a2v.video import probe, require_audio

    t0 = time.perf_counter()
    src = Path(video)
    if not src.is_file():
        raise InputError(f"video {src} not found (give a clip of the person speaking)")
    require_audio(probe(src), src)
    if not models:
        raise InputError("fit needs at least one stage 1 model (e.g. models=('tcn_gan',))")
    out = Path(out_dir)
    if (out / "pipeline.json").exists():
        raise InputError(f"{out} already holds a fitted pipeline: choose a new output folder or delete it")
    stage2 = stage2 or cfg.stage2
    device = resolve_device(device)
    work = out / "work"
    tcfg = replace(stage2.template, fps=cfg.data.video_fps)
    template = prepare_template(src, tcfg, device=device, progress=progress)
    item = _item_id(src)
    template.speaker = item
    data_dir = write_person_dataset(template, src, work / "data", item)
    s1cfg = replace(cfg, data=replace(cfg.data, holdout_fraction=0.0, holdout_ids=()))
    t1 = time.perf_counter()
    paths = train_mouth(data_dir, work / "stage1", s1cfg, models=models, progress=progress)
    t2 = time.perf_counter()
    renderer, rep = train_renderer(template, stage2, work / "renderer", progress=progress)
    t3 = time.perf_counter()
    pipe = LipSyncPipeline.from_pretrained(paths[models[0]])
    pipe.renderer, pipe.template = renderer, template
    pipe.save_pretrained(out)
    write_json_atomic(out / "fit.json", {
        "video": str(src.resolve()), "speaker": item, "frames": len(template),
        "frames_without_face": int((~template.has_face).sum()), "stage1_models": {k: str(v) for k, v in paths.items()},
        "saved_model": models[0], "renderer": rep,
        "seconds": {"prepare": round(t1 - t0, 3), "stage1": round(t2 - t1, 3), "renderer": round(t3 - t2, 3)},
        "stage2_config": to_dict(stage2),
    })
    return out
