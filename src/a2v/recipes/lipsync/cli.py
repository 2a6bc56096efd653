"""``a2v lipsync ...``: fit a person, train/evaluate stage 1, generate talking-face video.

Heavy modules are imported inside each command so that ``a2v --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from a2v.cliutil import ConfigOpt, ResumeOpt, SetOpt, console, recipe_config
from a2v.device import resolve_device
from a2v.errors import InputError

app = typer.Typer(
    help="Lip-sync (Zheng et al. 2020): speech + a person's template video -> that person speaking it.\n\n"
    "Example: a2v lipsync generate --face photo.jpg --audio speech.wav -o out.mp4",
    no_args_is_help=True,
)

PresetOpt = Annotated[str, typer.Option("--preset", help="Config preset when no --config: paper or tiny.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1 or auto.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the JSON report here instead of stdout.")]
DetectorOpt = Annotated[str, typer.Option("--detector", help="Face detector: mtcnn, dlib, dlib_cnn or mediapipe.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars (on stderr).")]
LangIdOpt = Annotated[str | None, typer.Option(
    "--langid-model", help="Multilingual Whisper folder (any size) that identifies the spoken language.")]


def _config(config: Path | None, sets: list[str] | None, preset: str):  # noqa: ANN202 - LipSyncConfig
    from a2v.recipes.lipsync.config import LipSyncConfig

    if preset not in ("paper", "tiny"):
        raise InputError(f"--preset must be paper or tiny, not '{preset}'")
    return recipe_config(LipSyncConfig, "lipsync", config, sets, preset)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Dataset from `a2v prepare lipsync` or a folder of videos.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (one pipeline per model).")],
    stage: Annotated[str, typer.Option(help="Which stage to train: mouth (audio -> mouth shapes).")] = "mouth",
    models: Annotated[str, typer.Option(help="Comma-separated: tcn_gan, tcn, lstm, bilstm (Table 1).")] = "tcn_gan,tcn,lstm,bilstm",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    preset: PresetOpt = "paper",
    resume: ResumeOpt = False,
) -> None:
    """Train stage 1: the adversarial TCN and the paper's baselines on the same data and loss.

    Example: a2v lipsync train --data data/lipsync --out runs/lipsync --stage mouth --preset tiny
    """
    if stage != "mouth":
        raise InputError(f"--stage {stage}: only 'mouth' trains on a dataset; the renderer is trained per person by `a2v lipsync fit`")
    from a2v.recipes.lipsync.config import ARCHS
    from a2v.recipes.lipsync.train import train_mouth

    names = tuple(m.strip() for m in models.split(",") if m.strip())
    unknown = [m for m in names if m not in ARCHS]
    if unknown or not names:
        raise InputError(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(ARCHS)}")
    paths = train_mouth(data, out, _config(config, set_, preset), models=names, resume=resume)
    for name, path in paths.items():
        console.print(f"{name}: {path}")


@app.command()
def evaluate(
    run: Annotated[Path | None, typer.Argument(help="Run folder of `a2v lipsync train` (Table 1 + Fig. 5).")] = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Test data (default: the run's held-out items).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the tables and plots (or sync.json).")] = None,
    video: Annotated[Path | None, typer.Option("--video", help="Measure sync on a generated video instead.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", "-a", help="Speech for --video (default: its own audio track).")] = None,
    reference: Annotated[Path | None, typer.Option("--reference", help="Ground-truth video measured the same way.")] = None,
    syncnet: Annotated[Path | None, typer.Option("--syncnet", help="SyncNet weights (syncnet_v2.model): adds LSE-C/LSE-D.")] = None,
    report: ReportOpt = None,
    progress: ProgressOpt = True,
    detector: DetectorOpt = "mtcnn",
    device: DeviceOpt = "auto",
    langid_model: LangIdOpt = None,
) -> None:
    """Stage 1 error table (MSE, MAE, inter-frame MSE), or audio-mouth sync of a video (JSON on stdout).

    Example: a2v lipsync evaluate runs/lipsync     |     a2v lipsync evaluate --video out.mp4 --reference real.mp4
    """
    if video is None and run is None:
        raise InputError("give a run folder (stage 1 table) or --video out.mp4 (sync measurement)")
    if langid_model is not None and video is None:
        raise InputError("--langid-model identifies the language of --video's speech; a run folder's table does not use it")
    if langid_model is not None:
        from a2v.encoders.langid import check_langid_model

        check_langid_model(langid_model)  # before any audio is read or model loads
    if video is not None:
        from a2v.recipes.lipsync.inputs import check_video_input, load_speech

        videos = {"model": check_video_input(video, "--video")}
        if reference is not None:
            videos["ground truth"] = check_video_input(reference, "--reference")
        if report is not None:
            _check_report_path(report)
        if syncnet is not None:
            from a2v.errors import require_file

            require_file(syncnet, "SyncNet weights")
        speech = {name: load_speech(audio if audio is not None else path, "audio of " + name)
                  for name, path in videos.items()}  # missing track, truncated or silent audio: stop here
        from a2v.metrics.sync import measure_video_sync

        dev = resolve_device(device)
        rows = {name: measure_video_sync(path, (speech[name].mono, 16000), detector=detector, device=dev,
                                         progress=progress)
                for name, path in videos.items()}
        if langid_model is not None:  # which language the sync was measured on
            from a2v.recipes.lipsync.driven.langid import langid_note, speech_language

            for name in videos:
                rows[name]["language_id"] = lid = speech_language(speech[name].mono, 16000, langid_model, dev)
                console.print(f"{name}: speech language: {langid_note(lid)}", soft_wrap=True)
        if syncnet is not None:
            from a2v.metrics.syncnet import load_syncnet, lse_scores

            net = load_syncnet(syncnet)
            for name, path in videos.items():
                rows[name].update(lse_scores(path, net, audio=audio))
        for name, r in rows.items():
            lse = f", LSE-C {r['lse_c']:.2f}, LSE-D {r['lse_d']:.2f}" if "lse_c" in r else ""
            edge = " (at the edge of the search: the true offset may be larger)" if r["av_offset_at_edge"] else ""
            console.print(f"{name}: sync confidence {r['av_sync_conf']:.3f}, offset {r['av_offset_frames']:+d} "
                          f"frames{edge}{lse}", soft_wrap=True)
        if out is not None:
            from a2v.io import write_json_atomic

            write_json_atomic(out / "sync.json" if out.suffix != ".json" else out, rows)
        _emit(rows, report)
        return
    from a2v.recipes.lipsync.evaluate import evaluate_mouth

    if report is not None:
        _check_report_path(report)
    result = evaluate_mouth(run, data, out, progress=progress)  # prints the table (stderr)
    _emit(result, report)


@app.command()
def fit(
    video: Annotated[Path, typer.Option("--video", "-v", help="1-3 minutes (at least 60 s) of one person speaking.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pipeline folder to write.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="paper (full-face pix2pixHD, GPU), cpu (lower-face "
                                        "renderer, about 20-30 min on a CPU for 1-3 min of video) or tiny (smoke test, never usable).")] = "paper",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an unfinished or not-usable fit in --out "
                                         "(e.g. with more steps: --set stage2.train.max_steps=N).")] = False,
    device: DeviceOpt = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Fit one person: track their video, train the mouth model and the renderer, judge them on held-out frames.

    Exit status 0 = usable, 1 = fitted but NOT usable (generate refuses it), 2 = bad input.

    Example: a2v lipsync fit --video anna.mp4 --out models/lipsync/anna --preset cpu
    """
    import json

    from a2v.recipes.lipsync.fit import fit_person

    if preset not in ("paper", "cpu", "tiny"):
        raise InputError(f"--preset must be paper, cpu or tiny, not '{preset}'")
    from a2v.recipes.lipsync.config import LipSyncConfig

    cfg = recipe_config(LipSyncConfig, "lipsync", config, set_, preset)
    path = fit_person(video, out, cfg, progress=progress, device=device, resume=resume)
    verdict = json.loads((path / "fit.json").read_text(encoding="utf-8")).get("verdict")
    if verdict is not None and not verdict["usable"]:
        console.print(f"{path}: NOT USABLE; 'a2v lipsync generate --model {path}' will refuse it")
        raise typer.Exit(code=1)
    console.print(f"pipeline: {path}  (use: a2v lipsync generate --model {path} --audio speech.wav -o out.mp4)")


@app.command()
def generate(
    audio: Annotated[Path, typer.Option("--audio", "-a", help="Speech (wav/flac/mp3/ogg/m4a or a video's audio).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Video to write: .mp4, .mov, .m4v or .mkv.")] = Path("out.mp4"),
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Pipeline folder from `a2v lipsync fit`.")] = None,
    face: Annotated[Path | None, typer.Option("--face", "-f", help="Face photo or clip (no-training path).")] = None,
    template: Annotated[Path | None, typer.Option("--template", "-t", help="Template clip for --model.")] = None,
    transcript: Annotated[str | None, typer.Option(help="What is said (English): sharper mouth timing.")] = None,
    mode: Annotated[str, typer.Option(help="No-training path: auto, phoneme or envelope.")] = "auto",
    motion_scale: Annotated[float, typer.Option(help="Mouth/jaw motion scale (no-training path).")] = 1.0,
    blink: Annotated[bool, typer.Option("--blink/--no-blink", help="Natural blinks (no-training path).")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (blinks).")] = 0,
    fps: Annotated[float, typer.Option(help="Output frame rate for a photo (no-training path).")] = 25.0,
    language: Annotated[str, typer.Option(help="Speech language: auto (detect), en, zh, es, de, ... or other; "
                                                "phoneme timing is English only.")] = "auto",
    detector: DetectorOpt = "mtcnn",
    report: ReportOpt = None,
    progress: ProgressOpt = True,
    device: DeviceOpt = "auto",
    langid_model: LangIdOpt = None,
    allow_unusable: Annotated[bool, typer.Option(
        "--allow-unusable", help="Use a --model that fit judged NOT USABLE (with a warning).")] = False,
) -> None:
    """Talking-face video from speech: with a fitted --model, or from any --face photo/clip with no training.

    The report is printed to stdout as one JSON object (or written to --report FILE.json).
    Example: a2v lipsync generate --face photo.jpg --audio speech.wav -o out.mp4
    """
    from a2v.errors import require_file
    from a2v.recipes.lipsync.driven.params import MODES, check_language
    from a2v.recipes.lipsync.inputs import check_output_video, load_speech

    if mode not in MODES:
        raise InputError(f"--mode must be auto, phoneme or envelope, not '{mode}'")
    language = check_language(language)
    if model is None and face is None:
        raise InputError("give --face photo.jpg (no-training path) or --model DIR (a fitted person)")
    output = check_output_video(output)
    if report is not None:
        _check_report_path(report)
    if model is not None and not (model / "pipeline.json").is_file():
        raise InputError(f"--model {model} is not a fitted pipeline folder (no pipeline.json); "
                         "make one with 'a2v lipsync fit'")
    for path, what in ((face, "--face"), (template, "--template")):
        if path is not None:
            require_file(path, what)
    if langid_model is not None:
        if model is not None:
            raise InputError("--langid-model chooses the mouth mode of the no-training path (--face); "
                             "a fitted --model does not use it")
        from a2v.encoders.langid import check_langid_model

        check_langid_model(langid_model)  # missing, weightless or English-only Whisper: stop here
    speech = load_speech(audio, "--audio file")  # missing, truncated or silent: stop before any model loads
    if model is None:
        from a2v.recipes.lipsync.driven.generate import generate_driven

        result = generate_driven(
            face, speech, output, transcript=transcript, fps=fps, mode=mode, motion_scale=motion_scale, blink=blink,
            seed=seed, device=resolve_device(device), progress=progress, language=language, detector=detector,
            langid_model=langid_model,
        )
        if "english_fit" in result or "language_id" in result:  # auto mode checked the language: which mode, why
            hint = "" if "language_id" in result else " (a Whisper folder via --langid-model identifies the language)"
            console.print(f"note: {result['mode']} mode: {result['mode_reason']}{hint}", soft_wrap=True)
    else:
        from a2v.recipes.lipsync.pipeline import LipSyncPipeline

        pipe = LipSyncPipeline.from_pretrained(model, device=resolve_device(device), allow_unusable=allow_unusable)
        result = pipe.generate(speech.mono, output, template=template or face, progress=progress,
                               mux_audio=(speech.native, speech.sr))
    console.print(f"wrote {output}", soft_wrap=True)
    _emit(result, report)


def _check_report_path(path: Path) -> None:
    if path.suffix.lower() != ".json":
        raise InputError(f"--report {path} must end in .json")
    if not path.parent.is_dir():
        raise InputError(f"--report folder {path.parent} does not exist; create it first")


def _emit(result: dict, report: Path | None) -> None:
    """The report as one JSON object: to ``report`` (atomic) or raw to stdout (never line-wrapped)."""
    import json
    import sys

    result = _plain(result)
    if report is not None:
        from a2v.io import write_json_atomic

        write_json_atomic(report, result)
        console.print(f"report: {report}", soft_wrap=True)
    else:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
        sys.stdout.flush()


def _plain(x):  # noqa: ANN001, ANN202 - JSON-ready copy: numpy scalars/arrays to Python, NaN/Inf to null
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, bool | int | float | str):
        return x
    return str(x)
