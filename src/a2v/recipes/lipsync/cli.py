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
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the tables and plots.")] = None,
    video: Annotated[Path | None, typer.Option("--video", help="Measure sync on a generated video instead.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="Speech for --video (default: its own audio track).")] = None,
    reference: Annotated[Path | None, typer.Option("--reference", help="Ground-truth video measured the same way.")] = None,
    syncnet: Annotated[Path | None, typer.Option("--syncnet", help="SyncNet weights (syncnet_v2.model): adds LSE-C/LSE-D.")] = None,
) -> None:
    """Stage 1 error table (MSE, MAE, inter-frame MSE), or audio-mouth sync of a video.

    Example: a2v lipsync evaluate runs/lipsync     |     a2v lipsync evaluate --video out.mp4 --reference real.mp4
    """
    if video is None and run is None:
        raise InputError("give a run folder (stage 1 table) or --video out.mp4 (sync measurement)")
    if video is not None:
        import json

        from a2v.metrics.sync import measure_video_sync

        videos = {"model": video} if reference is None else {"model": video, "ground truth": reference}
        rows = {name: measure_video_sync(path, audio) for name, path in videos.items()}
        if syncnet is not None:
            from a2v.metrics.syncnet import load_syncnet, lse_scores

            net = load_syncnet(syncnet)
            for name, path in videos.items():
                rows[name].update(lse_scores(path, net, audio=audio))
        for name, r in rows.items():
            lse = f", LSE-C {r['lse_c']:.2f}, LSE-D {r['lse_d']:.2f}" if "lse_c" in r else ""
            console.print(f"{name}: sync correlation {r['sync_corr']:+.3f} at lag {r['sync_lag_frames']} frames{lse}")
        if out is not None:
            from a2v.io import write_json_atomic

            write_json_atomic(out / "sync.json" if out.suffix != ".json" else out, rows)
        else:
            print(json.dumps(rows, indent=2, default=str))
        return
    from a2v.recipes.lipsync.evaluate import evaluate_mouth, format_table1

    result = evaluate_mouth(run, data, out)
    console.print(format_table1(result))


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
    output: Annotated[Path, typer.Option("--output", "-o", help="mp4 to write.")] = Path("out.mp4"),
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Pipeline folder from `a2v lipsync fit`.")] = None,
    face: Annotated[Path | None, typer.Option("--face", "-f", help="Face photo or clip (no-training path).")] = None,
    template: Annotated[Path | None, typer.Option("--template", "-t", help="Template clip for --model.")] = None,
    transcript: Annotated[str | None, typer.Option(help="What is said (English): sharper mouth timing.")] = None,
    mode: Annotated[str, typer.Option(help="No-training path: auto, phoneme or envelope.")] = "auto",
    motion_scale: Annotated[float, typer.Option(help="Mouth/jaw motion scale (no-training path).")] = 1.0,
    blink: Annotated[bool, typer.Option("--blink/--no-blink", help="Natural blinks (no-training path).")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (blinks).")] = 0,
    fps: Annotated[float, typer.Option(help="Output frame rate for a photo (no-training path).")] = 25.0,
    language: Annotated[str, typer.Option(help="Speech language; phoneme timing is English only.")] = "en",
    detector: Annotated[str, typer.Option(help="Face detector: mtcnn, dlib, dlib_cnn or mediapipe.")] = "mtcnn",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    device: DeviceOpt = "auto",
) -> None:
    """Talking-face video from speech: with a fitted --model, or from any --face photo/clip with no training.

    Example: a2v lipsync generate --face photo.jpg --audio speech.wav -o out.mp4
    """
    import json

    if mode not in ("auto", "phoneme", "envelope"):
        raise InputError(f"--mode must be auto, phoneme or envelope, not '{mode}'")
    if model is None:
        if face is None:
            raise InputError("give --face photo.jpg (no-training path) or --model DIR (a fitted person)")
        from a2v.recipes.lipsync.driven.generate import generate_driven

        report = generate_driven(
            face, audio, output, transcript=transcript, fps=fps, mode=mode, motion_scale=motion_scale, blink=blink,
            seed=seed, device=resolve_device(device), progress=progress, language=language, detector=detector,
        )
    else:
        from a2v.audio import load_audio
        from a2v.recipes.lipsync.pipeline import LipSyncPipeline

        pipe = LipSyncPipeline.from_pretrained(model, device=resolve_device(device))
        report = pipe.generate(load_audio(audio, sr=16000), output, template=template or face, progress=progress)
    console.print(f"wrote {output}")
    console.print(json.dumps(report, indent=1, default=str)[:2000])
