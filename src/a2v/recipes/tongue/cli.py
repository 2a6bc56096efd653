"""``a2v tongue prepare|train|generate|evaluate``: speech (+ text) to ultrasound tongue video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from a2v.cliutil import ConfigOpt, ResumeOpt, SetOpt, console
from a2v.device import resolve_device

app = typer.Typer(
    help="Speech (+ transcript) to ultrasound tongue imaging video: cascaded EDM video diffusion "
    "(Yang et al. 2024) and the DNN baseline.\n\nExample: a2v tongue train --data data/tongue --out runs/tongue",
    no_args_is_help=True,
)

ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


def _config(config: Path | None, set_: list[str] | None):
    from a2v.cliutil import recipe_config
    from a2v.recipes.tongue.config import TongueConfig

    return recipe_config(TongueConfig, "tongue", config, set_)


@app.command()
def prepare(
    input: Annotated[list[Path], typer.Option("--input", "-i", help="UltraSuite/TaL folders (.ult+.param+.wav) or UTI videos.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Prepared dataset folder to write.")],
    num_shards: Annotated[int, typer.Option(help="Split the inputs over this many workers.")] = 1,
    shard_index: Annotated[int, typer.Option(help="Which worker this is (0-based; -1 = all inputs).")] = -1,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    split_by: Annotated[str | None, typer.Option(
        "--split-by", help="Held-out split written to split.json: 'utterance' or 'speaker' (speaker folders, "
        "no test speaker in training). Default: data.split_by.")] = None,
) -> None:
    """Read, synchronise, scan-convert (or keep raw scanlines), resample and resize ultrasound recordings.

    Example: a2v tongue prepare -i TaL80/core -o data/tongue --split-by speaker --set data.view=raw
    """
    from a2v.recipes.tongue.data import prepare_folder

    if split_by is not None:
        if split_by not in ("utterance", "speaker"):
            from a2v.errors import ConfigError

            raise ConfigError(f"--split-by must be 'utterance' or 'speaker', got {split_by!r}")
        set_ = [*(set_ or []), f"data.split_by={split_by}"]
    cfg = _config(config, set_)
    size = cfg.stage_size(cfg.num_stages - 1)
    rep = prepare_folder(list(input), output, cfg.data, size, num_shards, shard_index)
    split = rep.get("split")
    console.print(f"prepared {rep['written']} of {rep['inputs']} recordings ({rep['speakers']} speakers) into "
                  f"{output} ({rep['dropped']} dropped, reasons in dropped.jsonl; {rep['skipped']} other files "
                  f"skipped, listed in skipped.jsonl)"
                  + (f"; {split['by']} split: {split['train']} train / {split['test']} test" if split else ""))
    if rep["written"] == 0 and rep["dropped"] > 0:  # an empty dataset is not a success
        from a2v.errors import InputError

        raise InputError(f"no recording could be prepared: all {rep['dropped']} were dropped (reasons in "
                         f"{Path(output) / 'dropped*.jsonl'}); fix or remove them and run again")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared folder (a2v prepare tongue).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder; the pipeline goes to OUT/pipeline.")],
    stage: Annotated[str, typer.Option(help="'all', '0' or '1' (cascade stage).")] = "all",
    unconditional: Annotated[bool, typer.Option(help="Train without speech/text (reference model).")] = False,
    size: Annotated[int, typer.Option(help="Output size in px (paper Table 2: 64, 96, 112); 0 = the config's. "
                                      "Up to cascade.stage0_size_px one stage, above it the cascade to SIZE.")] = 0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Train the cascade stages (or the DNN baseline with --set model=dnn) and save the pipeline.

    Example: a2v tongue train -d data/tongue -o runs/at96 -c configs/tongue/paper.yaml --size 96
    """
    from dataclasses import replace

    from a2v.recipes.tongue.data import corpus_language
    from a2v.recipes.tongue.model import ConditionEncoder
    from a2v.recipes.tongue.pipeline import TonguePipeline
    from a2v.recipes.tongue.train import train_tongue

    cfg = _config(config, set_)
    cfg = replace(cfg, cond=cfg.cond.resolved(corpus_language(data)))  # language and text encoder from the data
    if size:
        cfg = cfg.with_output_size(size)
    device = "cpu" if cfg.train.cpu else resolve_device("auto")
    enc = ConditionEncoder.from_config(cfg.cond, device)
    stages = list(range(cfg.num_stages)) if stage == "all" else [int(stage)]
    for s in stages:
        train_tongue(cfg, data, out / f"stage{s}", s, not unconditional, resume, progress, device, enc)
    runs = [out / f"stage{s}" for s in range(cfg.num_stages)]
    if all((r / "model.json").is_file() for r in runs):
        pipe = TonguePipeline.from_runs(cfg, runs, enc, device=device)
        console.print(f"pipeline written to {pipe.save_pretrained(out / 'pipeline')}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Pipeline folder (OUT/pipeline of train).")],
    audio: Annotated[Path, typer.Option("--audio", "-a", help="Speech file (any format FFmpeg reads).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Video to write (.mp4).")] = Path("tongue.mp4"),
    text: Annotated[str | None, typer.Option(help="Transcript (default: AUDIO's .txt, else ASR).")] = None,
    reference: Annotated[Path | None, typer.Option(help="Ground truth (.ult or UTI video) shown side by side.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the sampler.")] = 0,
    set_: SetOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Generate the ultrasound tongue video of a speech file, with the audio muxed in.

    Example: a2v tongue generate -m runs/tongue/pipeline -a speech.wav --text "a sentence" -o tongue.mp4
    """
    from a2v.audio import load_audio
    from a2v.errors import require_file
    from a2v.recipes.tongue.data import align_to_reference, read_transcript
    from a2v.recipes.tongue.pipeline import TonguePipeline

    device = resolve_device("auto")
    pipe = TonguePipeline.from_pretrained(model, device, overrides=set_)
    src = require_file(audio, "audio file")
    if text is not None and pipe.encoder.text is None:
        console.print(f"note: {model} is audio-only (trained with cond.use_text=false): --text is not used")
    speech, ref = src, None
    if reference is not None:  # cut the speech as the reference is synchronised: both start at its first frame
        wav = load_audio(src, sr=pipe.cfg.data.sample_rate_hz)  # (S,)
        speech, ref = align_to_reference(wav, require_file(reference, "reference"), pipe.cfg.data)
        if text is None:
            text = read_transcript(src, pipe.cfg.data.transcript_suffix)
    video = pipe.generate(speech, text, seed, progress=progress)
    out = pipe.write(output, video, speech, ref)
    console.print(f"wrote {out} ({pipe.frames_written(video, ref)} frames at {pipe.fps:g} fps"
                  + (f", beside {len(ref)} reference frames" if ref is not None else "") + ")")


@app.command()
def evaluate(
    model: Annotated[list[Path], typer.Option("--model", "-m", help="Pipeline folders (repeatable).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared folder; its held-out split is used.")],
    max_items: Annotated[int, typer.Option(help="Use at most this many utterances (0 = all).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    set_: SetOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """RMSE, PSNR, SSIM, LPIPS (VGG) and FID (I3D features) per pipeline, one row per model x condition x size.

    LPIPS and FID need weights on disk (--set metrics.lpips_weights=..., metrics.i3d_weights=...);
    without them the column shows "-" and a line names the missing file.

    Example: a2v tongue evaluate -m runs/at64/pipeline -m runs/at96/pipeline -m runs/at112/pipeline -d data/tongue
    """
    from a2v.io import write_json_atomic
    from a2v.recipes.tongue.evaluate import evaluate_pipeline, print_table
    from a2v.recipes.tongue.pipeline import TonguePipeline

    device = resolve_device("auto")
    results, flat, notes = {}, {}, []
    for m in model:
        pipe = TonguePipeline.from_pretrained(m, device, overrides=set_)
        label = "DNN (Porras 2019)" if pipe.cfg.model == "dnn" else "Diffusion (ours)"
        key = (label, "A+T" if pipe.cfg.cond.use_text else "A", pipe.cfg.stage_size(pipe.cfg.num_stages - 1))
        if key in results:
            from a2v.errors import InputError

            raise InputError(f"{m} is a second {' '.join(map(str, key))} px pipeline: give one per row")
        results[key] = evaluate_pipeline(pipe, data, max_items=max_items, progress=progress, notes=notes)
        flat[f"{key[0]} | {key[1]} | {key[2]}"] = {"model": str(m), **results[key]}
    print_table(results, notes)
    for row in flat.values():  # what the table shows as "-", and why, kept with the numbers
        row["not_measured"] = [k for k in ("lpips", "fid") if k not in row]
        row["notes"] = notes
    if json_out is not None:
        write_json_atomic(json_out, flat)
