"""``a2v`` command line: ``a2v <recipe> <prepare|train|generate|evaluate> --config x.yaml --set k=v``.

Every recipe contributes a Typer sub-app from ``a2v.recipes.<name>.cli`` (cheap to import;
heavy imports happen inside commands). Errors the user can fix are printed as one line
(``error: ...``) with exit status 2, never as a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Annotated

import typer

from a2v.errors import A2VError

RECIPES = ("lipsync", "tongue", "face", "image", "talk")

app = typer.Typer(
    name="a2v",
    help="a2v: speech and audio to pictures and video. Five methods, one core.\n\n"
    "Example: a2v demo   (makes its own inputs, writes demo_out/demo.mp4)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command()
def info() -> None:
    """Versions, devices, optional parts and which pretrained weights are available offline.

    Example: a2v info
    """
    from a2v.info import print_info

    print_info()


@app.command()
def prepare(
    recipe: Annotated[str, typer.Argument(help=f"One of: {', '.join(RECIPES)}.")],
    input: Annotated[list[Path], typer.Option("--input", "-i", help="Video/audio files or folders (repeatable).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset folder to write (shards + manifest).")],
    num_shards: Annotated[int, typer.Option(help="Split the inputs over this many workers.")] = 1,
    shard_index: Annotated[int, typer.Option(help="Which worker this is (0-based).")] = -1,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: --set face.min_size_px=120")] = None,
    split_by: Annotated[str | None, typer.Option(
        "--split-by", help="tongue only: held-out split by 'utterance' or 'speaker' (as a2v tongue prepare).")] = None,
) -> None:
    """Prepare a dataset for a recipe: audio, features, face tracks, crops, landmarks.

    Example: a2v prepare lipsync -i clips/ -o data/lipsync
    Example: a2v prepare tongue -i TaL80/core -o data/tongue --split-by speaker
    """
    if recipe not in RECIPES:
        raise A2VError(f"unknown recipe '{recipe}' (choose one of: {', '.join(RECIPES)})")
    try:
        mod = importlib.import_module(f"a2v.recipes.{recipe}.cli")
    except ModuleNotFoundError as e:
        if e.name != f"a2v.recipes.{recipe}.cli":
            raise
        mod = None
    kwargs = dict(input=input, output=output, num_shards=num_shards, shard_index=shard_index, config=config, set_=set_)
    if split_by is not None:  # a recipe option, passed on only to a recipe whose prepare takes it
        if mod is None or "split_by" not in inspect.signature(getattr(mod, "prepare", lambda: None)).parameters:
            raise A2VError(f"--split-by is not an option of 'a2v prepare {recipe}' (only of tongue)")
        kwargs["split_by"] = split_by
    if mod is not None and hasattr(mod, "prepare"):  # a recipe with its own data (e.g. ultrasound)
        mod.prepare(**kwargs)
        return
    from a2v.data.prepare import run_prepare_command  # talking-face videos: the shared engine

    run_prepare_command(recipe, **kwargs)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for demo.mp4 and report.")] = Path("demo_out"),
) -> None:
    """Make speech and a face photo, run the default lipsync, write demo.mp4 and a report.

    Example: a2v demo -o demo_out
    """
    from a2v.recipes.lipsync.demo import run_demo

    run_demo(output)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (not loopback: use --auth).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    models: Annotated[Path, typer.Option(help="Folder of trained models to offer.")] = Path("models"),
    auth: Annotated[str, typer.Option(help="'user:password' (HTTP Basic) or a bearer token required on every "
                                      "request; env A2V_SERVE_AUTH.", envvar="A2V_SERVE_AUTH")] = "",
    allowed_host: Annotated[list[str] | None, typer.Option(help="Host name clients use (Host header); repeatable.")] = None,
    trust_pickles: Annotated[bool, typer.Option(help="Let model folders load pickled networks (runs their code).")] = False,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload per file (MB).")] = 100.0,
    max_audio_s: Annotated[float, typer.Option(help="Longest speech input (s).")] = 600.0,
    max_video_s: Annotated[float, typer.Option(help="Longest face video (s).")] = 120.0,
    max_pixels: Annotated[int, typer.Option(help="Most pixels per image or video frame.")] = 4096 * 4096,
    max_decoded_mb: Annotated[float, typer.Option(help="Most memory one decoded input may take (MB).")] = 1024.0,
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time.")] = 1,
    queue_size: Annotated[int, typer.Option(help="Jobs waiting at most; more get HTTP 503.")] = 16,
    job_timeout_s: Annotated[float, typer.Option(help="A job running longer is stopped (s).")] = 1800.0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    langid_model: Annotated[str, typer.Option(help="Multilingual Whisper folder that identifies the speech's "
                                              "language for lipsync's auto mode.")] = "",
) -> None:
    """Web UI and HTTP API for every recipe.

    Example: a2v serve --port 7860
    """
    from a2v.serve.app import serve as _serve
    from a2v.serve.config import ServeConfig

    if auth and len(auth) < 8:
        raise A2VError("--auth: use at least 8 characters (user:password or a token)")
    for name, value in (("--max-upload-mb", max_upload_mb), ("--max-audio-s", max_audio_s),
                        ("--max-video-s", max_video_s), ("--max-pixels", max_pixels),
                        ("--max-decoded-mb", max_decoded_mb), ("--concurrency", concurrency),
                        ("--job-timeout-s", job_timeout_s)):
        if not value > 0:
            raise A2VError(f"{name} must be > 0, got {value}")
    if queue_size < 0:
        raise A2VError(f"--queue-size must be >= 0, got {queue_size}")
    if langid_model:
        from a2v.encoders.langid import check_langid_model

        check_langid_model(langid_model)  # a missing or English-only Whisper stops the start, not a job
    cfg = ServeConfig(max_upload_mb=max_upload_mb, max_audio_s=max_audio_s, max_video_s=max_video_s,
                      max_pixels=max_pixels, max_decoded_mb=max_decoded_mb, concurrency=concurrency,
                      queue_size=queue_size, job_timeout_s=job_timeout_s, device=device,
                      trust_pickles=trust_pickles, auth=auth, allowed_hosts=tuple(allowed_host or ()),
                      langid_model=langid_model)
    _serve(host=host, port=port, models_dir=models, cfg=cfg)


def _add_recipes() -> None:
    for name in RECIPES:
        try:
            mod = importlib.import_module(f"a2v.recipes.{name}.cli")
        except ModuleNotFoundError as e:
            if e.name not in ("a2v.recipes", f"a2v.recipes.{name}", f"a2v.recipes.{name}.cli"):
                raise  # a real import error inside an existing recipe
            continue
        app.add_typer(mod.app, name=name)


_add_recipes()
app.add_typer(importlib.import_module("a2v.tiny_models").app, name="models")  # a2v models tiny


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Usage errors and --help are handled by Typer (exit 2 / 0);
    A2VError becomes one ``error: ...`` line on stderr and exit status 2."""
    try:
        app(args=argv, prog_name="a2v")  # standalone mode: always ends in SystemExit
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except A2VError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
