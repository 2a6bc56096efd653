"""The Gradio app: a tab per recipe, progress with ETA, messages instead of stack traces."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from a2v.errors import A2VError
from a2v.serve import jobs
from a2v.serve.config import ServeConfig

log = logging.getLogger("a2v.serve")

INTRO = (
    "# a2v\nSpeech and audio to pictures and video. Upload inputs (or record speech), press the "
    "button, watch the progress bar; results can be previewed and downloaded."
)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a job; a2v errors become a one-line message, anything else a short notice (logged)."""
    import functools

    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except A2VError as e:
            raise gr.Error(str(e).splitlines()[0], print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - the server must answer, never show a traceback
            log.exception("job failed")
            raise gr.Error(f"internal error ({type(e).__name__}); the server log has details", print_exception=False) from None

    return wrapped


def _example_inputs(root: Path) -> list[list[str]]:
    """A face photo (scikit-image's public-domain astronaut) and eSpeak NG speech, made locally."""
    try:
        from skimage import data

        from a2v.audio import save_audio, synthesize_speech
        from a2v.video import write_png

        photo, speech = root / "astronaut.png", root / "hello.wav"
        write_png(photo, data.astronaut())
        save_audio(speech, synthesize_speech("Hello! I am a talking photo made by a two v."), 16000)
    except (A2VError, ImportError, OSError) as e:
        log.warning("no example inputs: %s", e)
        return []
    return [[str(photo), str(speech)]]


def _lipsync_tab(ws: jobs.Workspace, cfg: ServeConfig, models_dir: Path | None, examples_dir: Path) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            photo = gr.Image(label="Face photo", type="filepath", sources=["upload"], elem_id="lipsync-photo")
            clip = gr.Video(label="...or a face video (used as template)", sources=["upload"], elem_id="lipsync-clip")
            audio = gr.Audio(label="Speech", type="filepath", sources=["upload", "microphone"], elem_id="lipsync-audio")
            transcript = gr.Textbox(label="Transcript (optional, English: sharper mouth timing)", lines=2)
            with gr.Accordion("Options", open=False):
                model = gr.Dropdown(
                    [jobs.DEFAULT_MODEL, *jobs.list_models(models_dir, "lipsync")], value=jobs.DEFAULT_MODEL,
                    label=f"Model (trained ones from {models_dir}/lipsync/)",
                )
                mode = gr.Radio(["auto", "phoneme", "envelope"], value="auto", label="Mouth timing (default model)")
                motion = gr.Slider(0.0, 2.0, value=1.0, step=0.1, label="Motion scale")
                blink = gr.Checkbox(value=True, label="Natural blinks")
            run = gr.Button("Generate talking face", variant="primary", elem_id="lipsync-run")
        with gr.Column():
            video = gr.Video(label="Result", elem_id="lipsync-out", interactive=False)
            report = gr.JSON(label="Report")
    examples = _example_inputs(examples_dir)
    if examples:
        gr.Examples(examples, inputs=[photo, audio], label="Example inputs")

    @_guard
    def go(photo_path, clip_path, audio_path, text, model_name, mode_name, scale, blinks, progress=gr.Progress(track_tqdm=True)):  # noqa: ANN001, ANN202, B008
        progress(0.0, desc="waiting for a free worker")
        with ws.slots:
            out, rep = jobs.run_lipsync(
                clip_path or photo_path, audio_path, ws.new_job(), cfg, models_dir=models_dir, model=model_name,
                transcript=text, mode=mode_name, motion_scale=float(scale), blink=bool(blinks), progress=True,
            )
        return str(out), rep

    run.click(go, [photo, clip, audio, transcript, model, mode, motion, blink], [video, report], api_name="lipsync")


def _pending_tab(recipe: str, what: str, train_cmd: str, models_dir: Path | None) -> None:
    import gradio as gr

    names = jobs.list_models(models_dir, recipe)
    gr.Markdown(
        f"**{what}**\n\nThis tab runs trained `{recipe}` pipelines from `{models_dir}/{recipe}/`"
        f" (found: {', '.join(names) or 'none'}). Train one with `{train_cmd}`."
    )


def build_ui(ws: jobs.Workspace, cfg: ServeConfig, models_dir: Path | None) -> Any:
    """The Gradio Blocks (not launched)."""
    import gradio as gr

    examples_dir = ws.root / "examples"
    examples_dir.mkdir(exist_ok=True)
    with gr.Blocks(title="a2v", analytics_enabled=False, delete_cache=(600, cfg.keep_results_s)) as ui:
        gr.Markdown(INTRO)
        with gr.Tab("Talking face (lipsync)"):
            _lipsync_tab(ws, cfg, models_dir, examples_dir)
        with gr.Tab("Tongue (ultrasound)"):
            _pending_tab("tongue", "Speech (+ transcript) to ultrasound tongue video.", "a2v tongue train", models_dir)
        with gr.Tab("Face from voice"):
            _pending_tab("face", "Speech to a face photo.", "a2v face train", models_dir)
        with gr.Tab("Sound to image"):
            _pending_tab("image", "Any sound to a picture.", "a2v image train", models_dir)
        with gr.Tab("Talking photo (StyleGAN)"):
            _pending_tab("talk", "One face photo + speech to a talking-face video.", "a2v talk train", models_dir)
    ui.queue(default_concurrency_limit=cfg.concurrency, max_size=cfg.queue_size)
    return ui
