"""``a2v image train|generate|evaluate`` and ``a2v prepare image``: any sound to a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from a2v.cliutil import ConfigOpt, ResumeOpt, SetOpt, console
from a2v.device import resolve_device

app = typer.Typer(
    help="Any sound to a picture: a WavLM audio encoder trained with momentum contrast against a frozen "
    "image tower (WavBriVL, Fang et al. 2023; Wav2CLIP baseline), pictures by VQGAN latent optimisation."
    "\n\nExample: a2v image generate -m runs/image/pipeline -a dog.wav -o dog.png",
    no_args_is_help=True,
)

ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


def _config(config: Path | None, set_: list[str] | None):
    from a2v.cliutil import recipe_config
    from a2v.recipes.image.config import ImageConfig

    return recipe_config(ImageConfig, "image", config, set_)


def prepare(input: list[Path], output: Path, num_shards: int = 1, shard_index: int = -1, config: Path | None = None,
            set_: list[str] | None = None, progress: bool = True) -> None:
    """Pairs (random video frame centre-cropped square, 16 kHz audio around it) from videos, or audio files
    with a same-named image. Called by ``a2v prepare image``.

    Example: a2v prepare image -i vggsound/ -o data/image --set data.image_size_px=256
    """
    from a2v.recipes.image.data import prepare_pairs

    cfg = _config(config, set_)
    rep = prepare_pairs(input, output, cfg.data, num_shards, shard_index, progress)
    console.print(f"prepared {rep['pairs']} of {rep['inputs']} inputs into {output} ({rep['val']} held out, "
                  f"{rep['dropped']} dropped, reasons in dropped*.jsonl)")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared folder (a2v prepare image).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder; the pipeline goes to OUT/pipeline.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Train the audio encoder against the frozen image tower (CXLoss, or --set loss.kind=wav2clip).

    Example: a2v image train -d data/image -o runs/image -c configs/image/tiny.yaml
    """
    from a2v.recipes.image.train import train as run

    cfg = _config(config, set_)
    res = run(cfg, data, out, resume=resume, progress=progress)
    shown = ", ".join(f"{k} {v:.3g}" for k, v in res.eval_metrics.items())
    console.print(f"trained {res.step} steps{'; ' + shown if shown else ''}; pipeline: {out / 'pipeline'}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Pipeline folder (OUT/pipeline of train).")],
    audio: Annotated[Path, typer.Option("--audio", "-a", help="Sound file (any format FFmpeg reads).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write (.png).")] = Path("image.png"),
    steps: Annotated[int | None, typer.Option(help="Optimisation steps (default generate.steps).")] = None,
    init_image: Annotated[Path | None, typer.Option(help="Start from this picture instead of noise.")] = None,
    video: Annotated[Path | None, typer.Option(help="Also write the optimisation as a video (.mp4).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default generate.seed).")] = None,
    set_: SetOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Make a picture of a sound by optimising VQGAN latents toward its embedding.

    Example: a2v image generate -m runs/image/pipeline -a dog.wav -o dog.png --steps 300 --video dog.mp4
    """
    from a2v.errors import InputError, require_file
    from a2v.recipes.image.pipeline import ImagePipeline
    from a2v.video import write_png

    if output.suffix.lower() != ".png":
        raise InputError(f"--output must be a .png file, got {output}")
    pipe = ImagePipeline.from_pretrained(model, resolve_device(), overrides=set_)
    picture = pipe.generate(require_file(audio, "audio file"), steps=steps, init_image=init_image, video=video,
                            seed=seed, progress=progress)
    console.print(f"wrote {write_png(output, picture)} ({picture.shape[1]}x{picture.shape[0]})"
                  + (f" and {video}" if video else ""))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Pipeline folder (OUT/pipeline of train).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared folder (a2v prepare image).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json, pictures and the study page.")],
    split: Annotated[str, typer.Option(help="'val' (held out), 'train' or 'all'.")] = "val",
    two_afc: Annotated[bool, typer.Option("--2afc/--no-2afc", help="Run the generation two-alternative test.")] = True,
    baseline: Annotated[Path | None, typer.Option(help="A second pipeline (e.g. import-wav2clip's): the study "
                                                  "page then pits its picture of each sound against ours.")] = None,
    set_: SetOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Retrieval R@1/5/10 and median rank, zero-shot accuracy (text towers), two-alternative test scored by
    another tower (eval.judge) + HTML study page (Positive / Negative / Neither; score it with score-study).

    Example: a2v image evaluate -m runs/image/pipeline -d data/image -o runs/image/eval --baseline runs/wav2clip/pipeline
    """
    from a2v.recipes.image.evaluate import evaluate as run
    from a2v.recipes.image.evaluate import format_metrics
    from a2v.recipes.image.pipeline import ImagePipeline

    pipe = ImagePipeline.from_pretrained(model, resolve_device(), overrides=set_)
    base = ImagePipeline.from_pretrained(baseline, resolve_device()) if baseline is not None else None
    metrics = run(pipe, data, out, split=split, two_afc=two_afc, progress=progress, baseline=base)
    console.print(format_metrics(metrics))
    console.print(f"written to {out / 'metrics.json'}")


TrustOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow unpickling the file's non-tensor objects "
                                        "(Lightning callbacks, hyper-parameters). Only for files you trust.")]


ConvertOutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output .safetensors (default: beside the input).")]


def _convert(src: Path, out: Path | None, trust: bool, prefix: str) -> None:
    from a2v.recipes.image.ckpt import convert_lightning_checkpoint

    dst = out or src.with_suffix(".safetensors")
    rep = convert_lightning_checkpoint(src, dst, trust_pickle=trust, required_prefix=prefix)
    console.print(f"wrote {rep['tensors']} tensors to {dst}")


@app.command("convert-vqgan")
def convert_vqgan(
    ckpt: Annotated[Path, typer.Argument(help="taming-transformers VQGAN checkpoint (.ckpt, Lightning format).")],
    out: ConvertOutOpt = None,
    trust_pickle: TrustOpt = False,
) -> None:
    """Convert a published VQGAN .ckpt once to safetensors (its state_dict); then set generate.vq.ckpt to it.

    Example: a2v image convert-vqgan vqgan_imagenet_f16_16384.ckpt --trust-pickle
    """
    _convert(ckpt, out, trust_pickle, "quantize.")


@app.command("convert-wav2clip")
def convert_wav2clip(
    ckpt: Annotated[Path, typer.Argument(help="Wav2CLIP's released checkpoint (ResNet_CX.ckpt, Lightning format).")],
    out: ConvertOutOpt = None,
    trust_pickle: TrustOpt = False,
) -> None:
    """Convert Wav2CLIP's released .ckpt once to safetensors, for a2v image import-wav2clip.

    Example: a2v image convert-wav2clip ResNet_CX.ckpt --trust-pickle
    """
    _convert(ckpt, out, trust_pickle, "audio_encoder.")


@app.command("import-wav2clip")
def import_wav2clip(
    ckpt: Annotated[Path, typer.Argument(help="Wav2CLIP checkpoint: ResNet_CX.ckpt or its .safetensors conversion.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pipeline folder to write.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Wrap Wav2CLIP's released audio encoder as a pipeline (the paper's baseline) for generate/evaluate.

    Example: a2v image import-wav2clip ResNet_CX.safetensors -o runs/wav2clip/pipeline -c configs/image/wav2clip.yaml
    """
    from a2v.recipes.image.pipeline import ImagePipeline

    pipe = ImagePipeline.from_wav2clip(ckpt, _config(config, set_))
    console.print(f"wrote {pipe.save_pretrained(out)} (Wav2CLIP audio encoder, tower {pipe.cfg.tower.kind})")


@app.command("score-study")
def score_study(
    answers: Annotated[list[Path], typer.Argument(help="answers.json files downloaded from the study page.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="study/key.json written by evaluate.")],
) -> None:
    """Fractions of Positive (the candidate picture chosen), Negative (the other) and Neither over all answers.

    Example: a2v image score-study alice.json bob.json -k runs/image/eval/study/key.json
    """
    import json

    from a2v.errors import InputError, require_file
    from a2v.recipes.image.evaluate import score_study as run

    try:
        sheets = [json.loads(require_file(a, "answers file").read_text(encoding="utf-8")) for a in answers]
        k = json.loads(require_file(key, "study key").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"study file is not JSON: {e}") from None
    res = run(sheets, k)
    console.print(f"positive {res['positive']:.3f}  negative {res['negative']:.3f}  neither {res['neither']:.3f}  "
                  f"({int(res['answers'])} answers)")


@app.command("detect-boxes")
def detect_boxes(
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared folder (a2v prepare image).")],
    weights: Annotated[Path, typer.Option(help="torchvision fasterrcnn_resnet50_fpn_v2 state dict (.pth).")],
    max_boxes: Annotated[int, typer.Option(help="Boxes kept per picture (BriVL: 36).")] = 36,
    score_min: Annotated[float, typer.Option(help="Lowest detection score kept.")] = 0.2,
    min_size_px: Annotated[int, typer.Option(help="Short side the detector resizes pictures to.")] = 600,
    overwrite: Annotated[bool, typer.Option(help="Replace existing box files.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Write <data>/boxes/<id>.npy for BriVL's tower with torchvision's COCO Faster R-CNN (a stand-in for BriVL's
    Visual Genome bottom-up-attention detector; box files from any detector work the same way).

    Example: a2v image detect-boxes -d data/image --weights fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth
    """
    from a2v.recipes.image.detect import build_detector
    from a2v.recipes.image.detect import detect_boxes as run

    det = build_detector(weights, max_boxes, score_min, min_size_px)
    rep = run(data, det, overwrite=overwrite, progress=progress, detector_name=f"torchvision-frcnn-v2:{weights.name}")
    console.print(f"{rep['boxes']} boxes for {rep['detected']} pictures ({rep['kept_existing']} kept, "
                  f"{rep['pictures_without_boxes']} without boxes) in {data / 'boxes'}")
