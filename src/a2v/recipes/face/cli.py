"""``a2v face train|generate|evaluate``: speech -> face photo (voice encoder + guided DDPM + super-resolution)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from a2v.cliutil import ConfigOpt, ResumeOpt, SetOpt, info, recipe_config

app = typer.Typer(
    help="Speech to face photo: Speech2Face voice encoder -> face embedding -> 64 px DDPM with "
    "classifier-free guidance -> diffusion super-resolution.\n\n"
    "Example: a2v face generate --model models/face --audio voice.wav --guidance 4 --num 4 -o faces.png",
    no_args_is_help=True,
)


def prepare(input: list[Path], output: Path, num_shards: int = 1, shard_index: int = -1,  # noqa: A002
            config: Path | None = None, set_: list[str] | None = None, progress: bool = True) -> None:
    """Talking-face clips -> audio + face crops with the face recipe's defaults (faces from 64 px; detector
    MediaPipe where usable, else MTCNN, else dlib). Called by ``a2v prepare face``.

    Example: a2v prepare face -i videos/ -o data/face --set detector=dlib
    """
    from a2v.recipes.face.prepare import prepare as run

    run(input, output, num_shards, shard_index, config, set_, progress)


@app.command("tiny-data")
def tiny_data(
    output: Annotated[Path, typer.Option("--output", "-o", help="New folder: gets train/ and test/ datasets.")],
    speakers: Annotated[int, typer.Option(help="Speakers: one LFW face + one eSpeak voice each.")] = 4,
    sentences: Annotated[int, typer.Option(help="Sentences per speaker (the last goes to test/).")] = 5,
    size: Annotated[int, typer.Option(help="Face crop size (px).")] = 64,
) -> None:
    """Make the tiny task offline: a few scikit-image LFW faces, each speaking with its own eSpeak NG
    voice, in the layout of `a2v prepare face` (train/ and test/). configs/face/tiny.yaml is set for it.

    Example: a2v face tiny-data -o data/face-tiny && a2v face train --stage encoder -d data/face-tiny/train
    -o runs/enc --model-dir models/face-tiny --config configs/face/tiny.yaml
    """
    from a2v.recipes.face.tiny_data import TinyDataConfig, make_tiny_data

    s = make_tiny_data(output, TinyDataConfig(n_speakers=speakers, n_sentences=sentences, crop_size_px=size))
    info(f"wrote {s['train_clips']} training and {s['test_clips']} test clips of {speakers} speakers to "
         f"{output}/train and {output}/test")


@app.command()
def train(
    stage: Annotated[str, typer.Option("--stage", help="encoder | decoder | sr")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared talking-face dataset (a2v prepare face) "
                                       "or, for decoder/sr, a folder of face pictures.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (checkpoints, logs).")],
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Also export the trained stage into this "
                                                   "pipeline folder.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    preset: Annotated[str, typer.Option(help="paper | tiny (when no --config).")] = "paper",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train one stage: the voice encoder, the 64 px face decoder or the super-resolution model.

    Example: a2v face train --stage decoder -d data/faces -o runs/face_dec --model-dir models/face
    """
    from a2v.errors import InputError
    from a2v.recipes.face.config import FaceConfig
    from a2v.recipes.face.train import train_stage

    if stage not in ("encoder", "decoder", "sr"):
        raise InputError(f"unknown stage '{stage}' (choose encoder, decoder or sr)")
    cfg = recipe_config(FaceConfig, "face", config, set_, preset)
    res = train_stage(cfg, stage, data, output, model_dir=model_dir, resume=resume, progress=progress)  # type: ignore[arg-type]
    info(f"trained {stage} for {res.step} steps; last checkpoint: {res.last_checkpoint}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Pipeline folder (config.json + safetensors).")],
    audio: Annotated[Path, typer.Option("--audio", "-a", help="Speech audio (6 s from the start are used).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG: the faces side by side.")] = Path("faces.png"),
    guidance: Annotated[float | None, typer.Option("--guidance", "-w", help="Guidance weight w (0..4).")] = None,
    num: Annotated[int, typer.Option("--num", "-n", help="How many faces.")] = 1,
    sampler: Annotated[str | None, typer.Option(help="ancestral | ddim | dpmsolver++")] = None,
    steps: Annotated[int | None, typer.Option(help="Sampling steps of ddim / dpmsolver++.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: cuda when present).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Generate face pictures for a voice and write them side by side into one PNG.

    Example: a2v face generate -m models/face --audio voice.wav --guidance 4 --num 4 -o faces.png
    """
    import numpy as np

    from a2v.errors import InputError, require_file
    from a2v.recipes.face.pipeline import FacePipeline
    from a2v.video import write_png

    if sampler is not None and sampler not in ("ancestral", "ddim", "dpmsolver++"):
        raise InputError(f"unknown sampler '{sampler}' (choose ancestral, ddim or dpmsolver++)")
    if num < 1:
        raise InputError("--num must be >= 1")
    require_file(audio, "audio")
    pipe = FacePipeline.from_pretrained(model, device=device)
    faces = pipe.generate(audio=audio, num=num, guidance_w=guidance, sampler=sampler, num_steps=steps, seed=seed,
                          progress=progress)  # (N,H,W,3)
    write_png(output, np.concatenate(list(faces), axis=1))  # (N,H,W,3)->(H,N*W,3)
    info(f"wrote {num} face(s) to {output}")


def parse_guidances(text: str | None) -> list[float | None]:
    """``"0,1,2,3,4"`` -> [0.0, 1.0, 2.0, 3.0, 4.0]; None or "" -> [None] (the model's guidance)."""
    from a2v.errors import InputError

    if not text:
        return [None]
    try:
        ws = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--guidance takes numbers separated by commas (e.g. 0,1,2,3,4), got '{text}'") from None
    if not ws or any(w < 0 for w in ws):
        raise InputError(f"--guidance weights must be >= 0, got '{text}'")
    return list(ws)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Pipeline folder.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared talking-face dataset (a2v prepare face).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file for the metrics.")] = Path("face_eval.json"),
    guidance: Annotated[str | None, typer.Option("--guidance", "-w", help="Guidance weights to sweep, comma-"
                                                 "separated (paper: 0,1,2,3,4); default: the model's.")] = None,
    attributes: Annotated[Path | None, typer.Option("--attributes", help="Age/gender classifier: a .py file "
                                                    "defining classify(picture uint8 (H,W,3)) -> dict.")] = None,
    frontalise: Annotated[bool, typer.Option(help="Frontalise landmarks (2D) before the measures.")] = True,
    max_items: Annotated[int, typer.Option(help="Evaluate at most this many clips.")] = 100,
    device: Annotated[str | None, typer.Option(help="cpu, cuda (default: cuda when present).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Tables 2-3: identity cosine, craniofacial-measure Pearson r with p-values, attribute agreement,
    each with its random-pair baseline; one row per guidance weight.

    Example: a2v face evaluate -m models/face -d data/face_test --guidance 0,1,2,3,4 -o face_eval.json
    """
    from a2v.cliutil import console
    from a2v.errors import InputError
    from a2v.io import write_json_atomic
    from a2v.recipes.face.evaluate import evaluate_guidance_sweep, format_rows, load_attribute_classifier
    from a2v.recipes.face.pipeline import FacePipeline

    ws = parse_guidances(guidance)
    if not data.is_dir():
        raise InputError(f"dataset folder not found: {data} (make one with: a2v prepare face -i videos/ -o {data})")
    attr_fn = load_attribute_classifier(attributes) if attributes is not None else None  # fail before generating
    pipe = FacePipeline.from_pretrained(model, device=device)
    rows = evaluate_guidance_sweep(pipe, data, ws, max_items=max_items, progress=progress, attr_fn=attr_fn,
                                   frontalised=frontalise)
    write_json_atomic(output, {"rows": rows, "frontalised": frontalise,
                               "attributes": str(attributes) if attributes else None})
    console.print(format_rows(rows), soft_wrap=True)
    from a2v.recipes.face.check import report_check

    for r in rows:  # never a silent success: how many generated pictures hold a face
        found = {"faces_found": int(r["n"] - r["n_no_face_generated"]), "of": int(r["n"])}
        console.print(report_check(found, f"the generated pictures at w = {r['guidance']:g}"), soft_wrap=True)
    info(f"wrote {output}")
