"""``a2v talk ...``: train the stages (invert, vae, embed2lat), generate a talking face from one photo, evaluate.

``a2v prepare talk`` uses the shared preparation engine (``prepare:`` section of configs/talk/paper.yaml).
Heavy modules are imported inside each command so that ``a2v --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from a2v.cliutil import ConfigOpt, ResumeOpt, SetOpt, console, recipe_config
from a2v.errors import InputError

app = typer.Typer(
    help="Talking face from one photo + speech through StyleGAN latents, a latent VAE and Embed2Lat "
    "(Natural audio-to-video generation with representation learning).\n\n"
    "Example: a2v talk generate --model runs/talk/pipeline --face photo.jpg --audio speech.wav -o out.mp4",
    no_args_is_help=True,
)

PresetOpt = Annotated[str, typer.Option("--preset", help="Config preset when no --config: paper or tiny.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1 or auto.")]
EncoderOpt = Annotated[Path | None, typer.Option(
    "--encoder", help="Start the inversion from this encoder (torch.export .pt2: images (1,3,R,R) in [0,1] -> W+ "
    "(1,num_ws,w_dim)); sets invert.init=encoder.")]
TrustEncoderOpt = Annotated[bool, typer.Option(
    "--trust-encoder", help="The --encoder file comes from a source you trust (loading it unpickles parts of it).")]


def _encoder_sets(encoder: Path | None, trust: bool) -> list[str]:
    sets = ["invert.init=encoder", f"invert.encoder_path={encoder}"] if encoder is not None else []
    return sets + (["invert.trust_encoder=true"] if trust else [])


def _config(config: Path | None, sets: list[str] | None, preset: str, device: str | None = None):  # noqa: ANN202
    from a2v.recipes.talk.config import TalkConfig

    if preset not in ("paper", "tiny"):
        raise InputError(f"--preset must be paper or tiny, not '{preset}'")
    sets = list(sets or []) + ([f"device={device}"] if device else [])
    return recipe_config(TalkConfig, "talk", config, sets, preset)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (latents/, vae/, embed2lat/, pipeline/).")],
    stage: Annotated[str, typer.Option(help="invert | vae | embed2lat | all (embed2lat and all export pipeline/).")] = "all",
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Dataset from `a2v prepare talk` (invert stage).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    preset: PresetOpt = "paper",
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    encoder: EncoderOpt = None,
    trust_encoder: TrustEncoderOpt = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train a stage: W+ inversion of every frame, the VAE on latent offsets, or Embed2Lat (speech -> codes).

    --resume continues a stage: the invert stage skips the clips already inverted (same settings).

    Example: a2v talk train --stage all --data data/talk -o runs/talk --preset tiny
    """
    from a2v.recipes.talk.train import run_stage

    cfg = _config(config, [*(set_ or []), *_encoder_sets(encoder, trust_encoder)], preset, device)
    path = run_stage(cfg, stage, data, out, progress=progress, resume=resume)
    console.print(f"{stage}: {path}")


@app.command()
def generate(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Pipeline folder (RUN/pipeline); required.")] = None,
    face: Annotated[Path | None, typer.Option("--face", "-f", help="Photo of one face (jpg/png); required.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", "-a", help="Speech (wav/mp3/... or a video's audio); "
                                                                     "required.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Video to write (.mp4).")] = Path("out.mp4"),
    motion_scale: Annotated[float | None, typer.Option(help="Multiply the predicted VAE codes before decoding (paper: 500).")] = None,
    detect: Annotated[bool | None, typer.Option("--detect/--no-detect", help="Find and crop the face (MTCNN); "
                                               "--no-detect when the photo already is a face crop.")] = None,
    paste_back: Annotated[bool | None, typer.Option("--paste-back/--no-paste-back",
                                                    help="Put the face back into the photo.")] = None,
    encoder: EncoderOpt = None,
    trust_encoder: TrustEncoderOpt = False,
    set_: SetOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Make a talking-face video from one photo and speech.

    Example: a2v talk generate --model runs/talk/pipeline --face photo.jpg --audio speech.wav -o out.mp4
    """
    if model is None:
        raise InputError("a2v talk generate needs --model: a pipeline folder made by `a2v talk train` "
                         "(RUN/pipeline); no pretrained talk model is shipped")
    if face is None or audio is None:
        raise InputError("a2v talk generate needs --face (a photo) and --audio (speech)")
    from a2v.recipes.talk.pipeline import TalkPipeline

    overrides = [*(set_ or []), *_encoder_sets(encoder, trust_encoder)]
    pipe = TalkPipeline.from_pretrained(model, device=None if device == "auto" else device, overrides=overrides)
    res = pipe.generate(face, audio, output, motion_scale=motion_scale, detect_face=detect, paste_back=paste_back)
    console.print(f"wrote {res.path}: {res.frames.shape[0]} frames at {res.fps:g} fps")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder of `a2v talk train` (latents/ and pipeline/).")],
    video: Annotated[Path | None, typer.Option("--video", help="Also measure mouth-audio sync of a generated video.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Inversion PSNR/LPIPS, VAE reconstruction MSE, Embed2Lat validation MSE (paper 0.273) [+ sync of --video].

    With --video, a sync that cannot be measured (no face in the video) is reported as not measured; the
    other metrics are still written to RUN/eval.json (exit status 0).

    Example: a2v talk evaluate runs/talk --video out.mp4
    """
    from a2v.recipes.talk.evaluate import evaluate_run

    metrics = evaluate_run(run, device=None if device == "auto" else device, video=video)
    missing = metrics.pop("not_measured", {})
    for k, v in metrics.items():
        console.print(f"{k}: {v:.4g}")
    for part, why in missing.items():
        console.print(f"[yellow]{part}: not measured[/] ({why})", markup=True, highlight=False)
    console.print(f"wrote {run / 'eval.json'}" + (f" ({', '.join(missing)} not measured)" if missing else ""))
