"""Lip-sync inference pipeline (diffusers style): audio -> mouth PCA -> 68 landmarks -> video.

    pipe = LipSyncPipeline.from_pretrained("models/lipsync/anna")
    mouth = pipe.predict_mouth(wav)                          # (S,) 16 kHz -> (F,10) 25 fps
    lm = pipe.predict_landmarks(wav, template_landmarks)     # -> (F,68,2) px
    report = pipe.generate(wav, "out.mp4")                   # the person's template, speaking ``wav``

A saved pipeline folder holds ``pipeline.json`` (format, resolved :class:`LipSyncConfig`, MFCC
and mouth statistics, PCA), ``mouth_model.safetensors`` (the generator) and ``jaw.json`` (the
jaw regression fitted on the training landmarks, optional). A fitted person (stage 2,
:func:`a2v.recipes.lipsync.fit.fit_person`) adds ``renderer/`` (:class:`Renderer`) and
``template/`` (:class:`Template`: the template clip, its face track and landmarks).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2v.config import from_dict, to_dict
from a2v.errors import InputError, MissingWeightsError
from a2v.face.landmarks import JAW
from a2v.face.mouth import MouthPose, denormalize_mouth, normalize_mouth, with_mouth
from a2v.io import atomic_path, write_json_atomic
from a2v.recipes.lipsync.config import LipSyncConfig
from a2v.recipes.lipsync.data import MouthFeatures, SpeakerStats
from a2v.recipes.lipsync.jaw import JawModel, mouth_width_height
from a2v.recipes.lipsync.mouth_infer import predict_long
from a2v.recipes.lipsync.mouth_model import build_generator
from a2v.recipes.lipsync.renderer import Renderer
from a2v.recipes.lipsync.template import (
    Template,
    TemplateConfig,
    face_inputs,
    map_channels,
    open_frames,
    pingpong_indices,
    prepare_template,
)

__all__ = ["LipSyncPipeline", "PIPELINE_FORMAT"]

PIPELINE_FORMAT = "a2v.lipsync_pipeline/1"
AUDIO_SR = 16000


def _check_verdict(folder: Path, allow_unusable: bool) -> None:
    """Refuse (or, with ``allow_unusable``, warn about) a folder that ``fit`` judged not usable."""
    report = folder / "fit.json"
    if not report.is_file():
        return
    try:
        verdict = json.loads(report.read_text(encoding="utf-8")).get("verdict")
    except json.JSONDecodeError as e:
        raise InputError(f"{report} is not JSON ({e.msg}): re-run 'a2v lipsync fit'") from None
    if not verdict or verdict.get("usable", True):
        return
    why = "; ".join(verdict.get("reasons", [])) or "below the fit thresholds"
    msg = f"{folder} was fitted but judged NOT USABLE ({why})"
    if not allow_unusable:
        raise InputError(f"{msg}: fit again with more video or steps ('a2v lipsync fit --resume "
                         "--set stage2.train.max_steps=N'), or use it anyway with --allow-unusable (allow_unusable=True)")
    from a2v.cliutil import console

    console.print(f"warning: {msg}; its output will not look like the person speaking")


class LipSyncPipeline:
    """Stage 1 generator + features (+ jaw model) + optional stage 2 ``renderer`` and ``template``.

    ``model``: a generator from :func:`build_generator` (mfcc (B,4F,13) -> (B,F,10));
    ``features``: the fitted :class:`MouthFeatures`; ``jaw``: :class:`JawModel` or None;
    ``renderer``: :class:`Renderer` (facial map -> face crop) or None; ``template``: the fitted
    person's :class:`Template` or None. Both are needed by :meth:`generate` only.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: LipSyncConfig,
        features: MouthFeatures,
        jaw: JawModel | None = None,
        renderer: Renderer | None = None,
        template: Template | None = None,
    ) -> None:
        self.model, self.cfg, self.features, self.jaw = model.eval(), cfg, features, jaw
        self.renderer, self.template = renderer, template

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> LipSyncPipeline:
        self.model.to(device)
        if self.renderer is not None:
            self.renderer.generator.to(device)
            self.renderer.device = torch.device(device)
        return self

    # --- persistence ------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``pipeline.json``, ``mouth_model.safetensors``, ``jaw.json`` (+ ``renderer/``, ``template/``) into ``path``."""
        from safetensors.torch import save_file

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(d / "mouth_model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"format": PIPELINE_FORMAT, "arch": self.cfg.model.arch})
        if self.jaw is not None:
            self.jaw.save(d / "jaw.json")
        elif (d / "jaw.json").exists():
            (d / "jaw.json").unlink()
        if self.renderer is not None:
            self.renderer.save_pretrained(d / "renderer")
        if self.template is not None:
            self.template.save(d / "template")
        write_json_atomic(d / "pipeline.json", {
            "format": PIPELINE_FORMAT, "config": to_dict(self.cfg), "features": self.features.to_dict(),
        })
        return d

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", allow_unusable: bool = False
    ) -> LipSyncPipeline:
        """Load a folder written by :meth:`save_pretrained` (e.g. ``RUN/tcn_gan`` or a fitted person).

        A fitted person whose ``fit.json`` verdict says "not usable" is refused (InputError naming
        the reasons) unless ``allow_unusable`` (then a warning is printed).
        """
        from safetensors.torch import load_model

        d = Path(path)
        _check_verdict(d, allow_unusable)
        meta, weights = d / "pipeline.json", d / "mouth_model.safetensors"
        if not meta.is_file() or not weights.is_file():
            what = "pipeline.json" if not meta.is_file() else "mouth_model.safetensors"
            raise MissingWeightsError(f"lip-sync model folder {d} has no {what}: train one with "
                                      "'a2v lipsync train' or fit a person with 'a2v lipsync fit'")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{meta} is not JSON ({e.msg}): re-export the model") from None
        if info.get("format") != PIPELINE_FORMAT:
            raise InputError(f"{meta} is not a lip-sync pipeline (format {info.get('format')!r})")
        cfg = from_dict(LipSyncConfig, info["config"], str(meta))
        model = build_generator(cfg.model)
        load_model(model, str(weights), strict=True, device=str(device))
        jaw = JawModel.load(d / "jaw.json") if (d / "jaw.json").is_file() else None
        renderer = Renderer.from_pretrained(d / "renderer", device) if (d / "renderer").is_dir() else None
        template = Template.load(d / "template") if (d / "template").is_dir() else None
        return cls(model, cfg, MouthFeatures.from_dict(info["features"], cfg.data), jaw, renderer, template)

    # --- stage 1 ----------------------------------------------------------------------------
    def mfcc_input(self, audio: np.ndarray) -> np.ndarray:
        """audio float32 (S,) 16 kHz -> standardised MFCC float32 (4F,13), F = round(S/16000*25)."""
        from a2v.audio import mfcc, num_video_frames

        wav = np.asarray(audio, np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise InputError(f"audio must be a non-empty mono waveform (S,) at 16 kHz, got shape {wav.shape}")
        n = num_video_frames(len(wav), AUDIO_SR, self.cfg.data.video_fps)
        if n == 0:
            raise InputError(f"audio of {len(wav)} samples is shorter than one video frame (40 ms)")
        return self.features.mfcc_input(mfcc(wav, AUDIO_SR), n)  # (S,)->(T,13)->(4F,13)

    def predict_mouth(self, audio: np.ndarray, progress: bool = False) -> np.ndarray:
        """audio float32 (S,) mono 16 kHz -> mouth PCA float32 (F,10) at 25 fps (windowed, paper §4.3.4)."""
        x = self.mfcc_input(audio)  # (4F,13)
        return predict_long(self.model, x, overlap_audio_frames=self.cfg.eval.overlap_audio_frames,
                            batch_windows=self.cfg.eval.batch_windows, progress=progress)  # (F,10)

    def mouth_landmarks(self, coeffs: np.ndarray, frames: np.ndarray, stats: SpeakerStats | None = None,
                        jaw_source: np.ndarray | None = None) -> np.ndarray:
        """Mouth PCA (F,10) onto template landmarks (F,68,2) px -> float32 (F,68,2) px (paper §3.2).

        Mouth = PCA inverse, de-standardised with ``stats`` (default: the template's own), mapped
        back with each frame's pose; jaw = jaw regression transferred onto the template
        (:meth:`JawModel.transfer`), fitted on ``jaw_source`` (default ``frames``) when it has 25+
        frames of a moving mouth, else the training-set jaw model. NaN rows (no face) stay NaN.
        """
        frames = np.asarray(frames, np.float32).reshape(-1, 68, 2)  # (F,68,2)
        if len(coeffs) != len(frames):
            raise InputError(f"{len(coeffs)} mouth frames but {len(frames)} template frames")
        ok = ~np.isnan(frames).any(axis=(1, 2))  # (F,)
        out = frames.copy()
        if not ok.any():
            return out
        src = frames[ok] if jaw_source is None else np.asarray(jaw_source, np.float32).reshape(-1, 68, 2)
        src = src[~np.isnan(src).any(axis=(1, 2))]
        stats = stats if stats is not None else self.features.template_stats(src)
        mouth = self.features.decode_mouth(coeffs[ok], stats)  # (F',10)->(F',20,2)
        pose = MouthPose.from_landmarks(frames[ok])
        out[ok] = with_mouth(frames[ok], denormalize_mouth(mouth, pose))  # (F',68,2)
        jaw = self.jaw
        if len(src) >= 25 and np.ptp(mouth_width_height(normalize_mouth(src)[0])[:, 1]) > 0.02:
            jaw = JawModel().fit(src)  # the template's mouth moves enough to fit its own jaw motion
        if jaw is not None:
            sel = out[ok]
            sel[:, JAW] = jaw.transfer(frames[ok], mouth)  # (F',17,2)
            out[ok] = sel
        return out

    def predict_landmarks(self, audio: np.ndarray, template_landmarks: np.ndarray, progress: bool = False) -> np.ndarray:
        """audio (S,) 16 kHz + template landmarks (68,2) or (Ft,68,2) px -> float32 (F,68,2) px at 25 fps.

        The template (a photo's landmarks, or a template video's, played forward and backward
        over the output) gives pose, the speaker's mouth statistics and everything but the mouth
        and jaw (:meth:`mouth_landmarks`).
        """
        tmpl = np.asarray(template_landmarks, np.float32).reshape(-1, 68, 2)  # (Ft,68,2)
        if np.isnan(tmpl).any():
            raise InputError("template landmarks contain NaN (frames without a face): drop those frames first")
        coeffs = self.predict_mouth(audio, progress=progress)  # (F,10)
        return self.mouth_landmarks(coeffs, tmpl[pingpong_indices(len(coeffs), len(tmpl))], jaw_source=tmpl)

    # --- stage 2 ----------------------------------------------------------------------------
    def _speaker_stats(self, template: Template) -> SpeakerStats | None:
        """The fitted person's mouth statistics when the template names them, else None (the template's own)."""
        if template.speaker is not None and template.speaker in self.features.speakers:
            return self.features.speakers[template.speaker]
        return None

    def generate(
        self,
        audio: np.ndarray | str | Path,
        out: str | Path,
        *,
        template: str | Path | None = None,
        progress: bool = True,
        batch_size: int = 8,
        mux_audio: tuple[np.ndarray, int] | None = None,
    ) -> dict:
        """Write an mp4 of the template speaking ``audio`` (paper §3.2); returns a report dict.

        audio: float32 (S,) mono 16 kHz, or an audio/video file. template: a video or photo of the
        fitted person (default: the template saved by ``fit``). Output: H.264 at 25 fps with the
        audio muxed, ``round(S/16000*25)`` frames, the template played forward and backward when
        the speech is longer; frames without a face pass through unchanged. Frames are streamed
        (memory does not grow with the audio length beyond its (F,68,2) landmarks).
        mux_audio: (float32 (S',) or (C,S') with C in {1, 2}, sr Hz) put on the output instead of
        ``audio`` (the input's own rate and channels); for a file ``audio`` that is the file's.
        """
        from tqdm.auto import tqdm

        from a2v.video import VideoWriter

        if self.renderer is None:
            raise MissingWeightsError("this lip-sync pipeline has no renderer/: fit the person first "
                                      "('a2v lipsync fit --video person.mp4 --out DIR')")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        t0 = time.perf_counter()
        if isinstance(audio, np.ndarray):
            wav = np.asarray(audio, np.float32)
        else:  # a file: analysed at 16 kHz mono, muxed at its own rate and channels
            from a2v.recipes.lipsync.inputs import load_speech

            sp = load_speech(audio)
            wav = sp.mono
            mux_audio = mux_audio if mux_audio is not None else (sp.native, sp.sr)
        out_wav, out_sr = mux_audio if mux_audio is not None else (wav, AUDIO_SR)
        fps = self.cfg.data.video_fps
        tmpl = self.template
        if template is not None:
            tcfg = tmpl.cfg if tmpl is not None else TemplateConfig(fps=fps)
            tmpl = prepare_template(template, tcfg, device=str(self.device), progress=progress)
            tmpl.speaker = self.template.speaker if self.template is not None else None  # the same person
        if tmpl is None:
            raise InputError("no template: this pipeline was not fitted to a person; pass template=clip.mp4")
        if abs(tmpl.fps - fps) > 1e-6:
            raise InputError(f"template at {tmpl.fps:g} fps but the mouth model runs at {fps:g} fps")
        expected = self.renderer.cfg.input_channels
        if map_channels(tmpl.cfg.map_layout) != expected:
            raise InputError(f"template map layout '{tmpl.cfg.map_layout}' does not give the renderer's "
                             f"{expected} input channels")
        coeffs = self.predict_mouth(wav)  # (F,10)
        n = len(coeffs)
        idx = pingpong_indices(n, len(tmpl))  # (F,) template frame of each output frame
        lm = self.mouth_landmarks(coeffs, tmpl.landmarks[idx], self._speaker_stats(tmpl),
                                  jaw_source=tmpl.landmarks)  # (F,68,2)
        has_face = tmpl.has_face[idx]  # (F,)
        boxes = tmpl.crop_boxes()  # (Ft,4): face or lower-face boxes (template.region)
        r = self.renderer.cfg.resolution_px
        feather = tmpl.cfg.feather_frac * r
        with open_frames(tmpl) as frames, VideoWriter(out, fps, audio=out_wav, audio_sr=out_sr) as writer, \
                tqdm(total=n, desc="lipsync render", unit="fr", disable=not progress) as bar:
            for b0 in range(0, n, batch_size):
                items = range(b0, min(n, b0 + batch_size))
                faces = [i for i in items if has_face[i]]
                inputs = {i: face_inputs(frames[idx[i]], boxes[idx[i]], lm[i], tmpl.cfg, r) for i in faces}
                rendered = {}
                if faces:
                    maps = np.stack([inputs[i][2] for i in faces])  # (B,R,R,C)
                    x = torch.from_numpy(maps).permute(0, 3, 1, 2)  # (B,R,R,C)->(B,C,R,R)
                    y = self.renderer.render(x, batch_size=batch_size)  # (B,3,R,R) in [-1,1]
                    y = ((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # ->(B,R,R,3)
                    rendered = dict(zip(faces, y, strict=True))
                for i in items:
                    frame = frames[idx[i]]
                    if i in rendered:
                        frame = inputs[i][0].paste_back(frame, rendered[i], feather_px=feather)
                    writer.write(frame)
                bar.update(len(items))
        seconds = time.perf_counter() - t0
        return {
            "output": str(out), "frames": n, "fps": fps, "duration_s": n / fps, "audio_s": len(wav) / AUDIO_SR,
            "template": tmpl.source, "template_frames": len(tmpl),
            "template_passes": math.ceil(n / len(tmpl)) if len(tmpl) > 1 else 1,
            "frames_without_face": int((~has_face).sum()), "resolution_px": r,
            "seconds": round(seconds, 3), "frames_per_s": round(n / seconds, 3) if seconds > 0 else None,
        }
