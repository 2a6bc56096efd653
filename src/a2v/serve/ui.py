"""The Gradio app: a tab per recipe, progress with ETA, messages instead of stack traces."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from a2v.errors import A2VError
from a2v.serve import jobs, limits
from a2v.serve.config import ServeConfig
from a2v.serve.runner import JobQueue

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
            raise gr.Error(limits.scrub(str(e).splitlines()[0]), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - the server must answer, never show a traceback
            log.exception("job failed")
            raise gr.Error(f"internal error ({type(e).__name__}); the server log has details", print_exception=False) from None

    return wrapped


def _stage(ws: jobs.Workspace, job: Path, path: str | None, field: str, kinds: tuple[str, ...],
           cfg: ServeConfig) -> Path | None:
    """An uploaded file checked (inside Gradio's upload folder, type from content, limits from headers)
    and copied into ``job`` under a fixed name; None when nothing was given."""
    from gradio.utils import get_upload_folder

    src = limits.require_uploaded(path, field, get_upload_folder())
    return None if src is None else jobs.stage_input(src, job, field, kinds, cfg)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Callable[..., Any], tuple, dict[str, Any]]:
    return fn, args, kwargs


def _run_job(ws: jobs.Workspace, queue: JobQueue, stage: Callable[[Path], tuple], progress: Any) -> Any:
    """``stage(job_folder)`` checks and stores the inputs and names the call; the call then runs in the
    job queue (a child process, stopped after ``job_timeout_s``) with its progress shown here. The
    folder is removed when anything fails; the stored inputs when the job is done."""
    job = ws.new_job()
    try:
        fn, args, kwargs = stage(job)
        progress(0.0, desc="waiting for a free worker")
        result = queue.wait(queue.submit(fn, *args, bounded=False, **kwargs),  # the UI's own queue bounds it
                            lambda frac, desc: progress(frac, desc=desc or "working"))
    except BaseException:
        ws.discard(job)
        raise
    ws.drop_inputs(job)
    return result


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


def _lipsync_tab(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None, examples_dir: Path) -> None:
    import gradio as gr

    from a2v.recipes.lipsync.driven.params import LANGUAGES

    with gr.Row():
        with gr.Column():
            photo = gr.Image(label="Face photo", type="filepath", image_mode=None, sources=["upload"],
                             elem_id="lipsync-photo")
            clip = gr.Video(label="...or a face video (used as template)", sources=["upload"], elem_id="lipsync-clip")
            audio = gr.Audio(label="Speech", type="filepath", sources=["upload", "microphone"], elem_id="lipsync-audio")
            transcript = gr.Textbox(label="Transcript (optional, English: sharper mouth timing)", lines=2)
            with gr.Accordion("Options", open=False):
                model = gr.Dropdown(
                    [jobs.DEFAULT_MODEL, *jobs.list_models(models_dir, "lipsync")], value=jobs.DEFAULT_MODEL,
                    label="Model (trained ones from the server's models/lipsync/ folder)",
                )
                mode = gr.Radio(["auto", "phoneme", "envelope"], value="auto", label="Mouth timing (default model)")
                motion = gr.Slider(0.0, 2.0, value=1.0, step=0.1, label="Motion scale")
                blink = gr.Checkbox(value=True, label="Natural blinks")
                language = gr.Dropdown(list(LANGUAGES), value="auto", allow_custom_value=False,
                                       label="Language of the speech (auto: English phones when they fit, "
                                             "else a syllable envelope)")
            run = gr.Button("Generate talking face", variant="primary", elem_id="lipsync-run")
        with gr.Column():
            video = gr.Video(label="Result", elem_id="lipsync-out", interactive=False)
            report = gr.JSON(label="Report")
    examples = _example_inputs(examples_dir)
    if examples:
        gr.Examples(examples, inputs=[photo, audio], label="Example inputs")

    @_guard
    def go(photo_path, clip_path, audio_path, text, model_name, mode_name, scale, blinks, lang="auto",  # noqa: ANN001, ANN202
           progress=gr.Progress()):  # noqa: ANN001, B008
        mode_name = limits.parse_choice(mode_name, "mode", limits.MODES)
        lang = limits.parse_language(lang if lang not in (None, "") else "auto")
        scale = limits.parse_float(scale, "motion scale", *limits.MOTION_SCALE_RANGE)
        text = limits.parse_text(text, "transcript")
        default = model_name in ("", None, jobs.DEFAULT_MODEL)
        if not default:
            jobs.model_path(models_dir, "lipsync", model_name)

        def job(folder: Path) -> tuple:
            kinds = ("image", "video") if default else ("video",)
            face = _stage(ws, folder, clip_path or photo_path, "face", kinds, cfg)
            audio = _stage(ws, folder, audio_path, "audio", ("audio",), cfg)
            return _call(jobs.run_lipsync, face, audio, folder, cfg, models_dir=models_dir, model=model_name,
                         transcript=text, mode=mode_name, motion_scale=scale, blink=bool(blinks), language=lang,
                         progress=True)

        out, rep = _run_job(ws, queue, job, progress)
        return str(out), limits.scrub_report(rep)

    run.click(go, [photo, clip, audio, transcript, model, mode, motion, blink, language], [video, report],
              api_name="lipsync")


def _model_choice(recipe: str, models_dir: Path | None) -> Any:
    import gradio as gr

    names = jobs.list_models(models_dir, recipe)
    hint = f"Trained {recipe} pipelines (the server's models/{recipe}/ folder)"
    if not names:
        gr.Markdown(f"No trained `{recipe}` model on this server yet: train one with "
                    f"`a2v {recipe} train` and copy its pipeline folder there.")
    return gr.Dropdown(names, value=names[0] if names else None, label=hint, allow_custom_value=False)


def _speech(recipe: str) -> Any:
    import gradio as gr

    return gr.Audio(label="Speech / sound", type="filepath", sources=["upload", "microphone"], elem_id=f"{recipe}-audio")


def _talk_tab(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            model = _model_choice("talk", models_dir)
            photo = gr.Image(label="Face photo", type="filepath", image_mode=None, sources=["upload"])
            audio = _speech("talk")
            motion = gr.Slider(0.0, 1000.0, value=500.0, step=1.0, label="Motion scale: multiplies the predicted code μ (paper: 500)")
            run = gr.Button("Generate talking face", variant="primary")
        with gr.Column():
            video = gr.Video(label="Result", interactive=False)
            report = gr.JSON(label="Report")

    @_guard
    def go(name, photo_path, audio_path, scale, progress=gr.Progress()):  # noqa: ANN001, ANN202, B008
        scale = limits.parse_float(scale, "motion scale", 0.0, 1000.0)
        jobs.pipeline_dir(models_dir, "talk", name)

        def job(folder: Path) -> tuple:
            photo = _stage(ws, folder, photo_path, "photo", ("image",), cfg)
            audio = _stage(ws, folder, audio_path, "audio", ("audio",), cfg)
            return _call(jobs.run_talk, photo, audio, folder, cfg, models_dir=models_dir, model=name,
                         motion_scale=scale, progress=True)

        out, rep = _run_job(ws, queue, job, progress)
        return str(out), limits.scrub_report(rep)

    run.click(go, [model, photo, audio, motion], [video, report], api_name="talk")


def _tongue_tab(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            model = _model_choice("tongue", models_dir)
            audio = _speech("tongue")
            text = gr.Textbox(label="Transcript (audio+text models; empty = speech recognition)", lines=2)
            seed = gr.Number(value=0, precision=0, label="Seed")
            run = gr.Button("Generate ultrasound video", variant="primary")
        with gr.Column():
            video = gr.Video(label="Result", interactive=False)
            report = gr.JSON(label="Report")

    @_guard
    def go(name, audio_path, transcript, seed_value, progress=gr.Progress()):  # noqa: ANN001, ANN202, B008
        seed_value = int(limits.parse_float(seed_value or 0, "seed", 0, 2**31 - 1))
        transcript = limits.parse_text(transcript, "transcript")
        jobs.pipeline_dir(models_dir, "tongue", name)

        def job(folder: Path) -> tuple:
            audio = _stage(ws, folder, audio_path, "audio", ("audio",), cfg)
            return _call(jobs.run_tongue, audio, folder, cfg, models_dir=models_dir, model=name, text=transcript,
                         seed=seed_value, progress=True)

        out, rep = _run_job(ws, queue, job, progress)
        return str(out), limits.scrub_report(rep)

    run.click(go, [model, audio, text, seed], [video, report], api_name="tongue")


def _face_tab(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            model = _model_choice("face", models_dir)
            audio = _speech("face")
            num = gr.Slider(1, 8, value=4, step=1, label="Faces")
            guidance = gr.Slider(0.0, 4.0, value=4.0, step=0.5, label="Guidance w (paper: 0-4)")
            sampler = gr.Radio(["dpmsolver++", "ddim", "ancestral"], value="dpmsolver++", label="Sampler")
            steps = gr.Slider(10, 100, value=50, step=5, label="Steps (fast samplers)")
            run = gr.Button("Generate faces", variant="primary")
        with gr.Column():
            gallery = gr.Gallery(label="Faces", columns=4)
            report = gr.JSON(label="Report")

    @_guard
    def go(name, audio_path, n, w, kind, k, progress=gr.Progress()):  # noqa: ANN001, ANN202, B008
        n = int(limits.parse_float(n, "faces", 1, 8))
        w = limits.parse_float(w, "guidance w", 0.0, 4.0)
        kind = limits.parse_choice(kind, "sampler", ("dpmsolver++", "ddim", "ancestral"))
        k = int(limits.parse_float(k, "steps", 1, 1000))
        jobs.pipeline_dir(models_dir, "face", name)

        def job(folder: Path) -> tuple:
            audio = _stage(ws, folder, audio_path, "audio", ("audio",), cfg)
            return _call(jobs.run_face, audio, folder, cfg, models_dir=models_dir, model=name, num=n, guidance_w=w,
                         sampler=kind, num_steps=k, progress=True)

        paths, rep = _run_job(ws, queue, job, progress)
        return [str(p) for p in paths], limits.scrub_report(rep)

    run.click(go, [model, audio, num, guidance, sampler, steps], [gallery, report], api_name="face")


def _image_tab(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            model = _model_choice("image", models_dir)
            audio = _speech("image")
            steps = gr.Slider(10, 1000, value=500, step=10, label="Optimisation steps (paper: 500)")
            seed = gr.Number(value=0, precision=0, label="Seed")
            run = gr.Button("Generate picture", variant="primary")
        with gr.Column():
            image = gr.Image(label="Picture", type="filepath", interactive=False)
            video = gr.Video(label="Optimisation", interactive=False)
            report = gr.JSON(label="Report")

    @_guard
    def go(name, audio_path, k, seed_value, progress=gr.Progress()):  # noqa: ANN001, ANN202, B008
        k = int(limits.parse_float(k, "steps", 1, 1000))
        seed_value = int(limits.parse_float(seed_value or 0, "seed", 0, 2**31 - 1))
        jobs.pipeline_dir(models_dir, "image", name)

        def job(folder: Path) -> tuple:
            audio = _stage(ws, folder, audio_path, "audio", ("audio",), cfg)
            return _call(jobs.run_image, audio, folder, cfg, models_dir=models_dir, model=name, steps=k,
                         seed=seed_value, progress=True)

        png, mp4, rep = _run_job(ws, queue, job, progress)
        return str(png), (str(mp4) if mp4.is_file() else None), limits.scrub_report(rep)

    run.click(go, [model, audio, steps, seed], [image, video, report], api_name="image")


def build_ui(ws: jobs.Workspace, queue: JobQueue, cfg: ServeConfig, models_dir: Path | None) -> Any:
    """The Gradio Blocks (not launched)."""
    import gradio as gr

    examples_dir = ws.root / "examples"
    examples_dir.mkdir(exist_ok=True)
    with gr.Blocks(title="a2v", analytics_enabled=False, delete_cache=(600, cfg.keep_results_s)) as ui:
        gr.Markdown(INTRO)
        with gr.Tab("Talking face (lipsync)"):
            _lipsync_tab(ws, queue, cfg, models_dir, examples_dir)
        with gr.Tab("Talking photo (StyleGAN, talk)"):
            _talk_tab(ws, queue, cfg, models_dir)
        with gr.Tab("Tongue ultrasound (tongue)"):
            _tongue_tab(ws, queue, cfg, models_dir)
        with gr.Tab("Face from voice (face)"):
            _face_tab(ws, queue, cfg, models_dir)
        with gr.Tab("Sound to picture (image)"):
            _image_tab(ws, queue, cfg, models_dir)
    ui.queue(default_concurrency_limit=cfg.concurrency, max_size=cfg.queue_size)
    return ui
