"""Talking photo (or clip) without training: audio -> mouth/jaw/eyelid landmarks -> mesh warp.

Steps: load audio (16 kHz) -> mouth parameters per frame (:mod:`.params`: phones and/or loudness)
-> blinks -> find the face (MTCNN) and its 68 landmarks (dlib) -> driven landmarks
(:mod:`.motion`) -> piecewise-affine warp of a square face crop (:mod:`a2v.face.warp`, border
pinned) + painted mouth interior (:mod:`.interior`) -> paste back (:class:`a2v.face.CropTransform`)
-> H.264 mp4 with the audio (atomic).

Face input: a photo, or a video clip (played at ``fps``; ping-pong looped when shorter than the
audio; frames without a face pass through unchanged). For a photo with several faces the largest
one is animated (the count is reported). The head stays still.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from a2v.errors import InputError, require_file
from a2v.recipes.lipsync.driven.motion import MotionConfig, blink_track, drive_landmarks, face_axes, inner_gap
from a2v.recipes.lipsync.driven.params import Mode, check_language, mouth_parameters
from a2v.recipes.lipsync.inputs import Speech, check_output_video, load_speech

SR = 16000  # Hz, working audio rate
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MIN_IMAGE_PX = 64  # shorter image side below which a photo is refused
MIN_FACE_PX = 48  # smallest face (longer box side, px) that can be animated
MAX_SIDE_PX = 1280  # larger photos are scaled down (output size and speed)
CROP_MARGIN = 0.45  # margin around the landmark box of the warped square (fraction of its side)
MAX_CLIP_FRAMES = 4500  # a face clip shorter than the audio is held in memory to ping-pong (3 min at 25 fps)


def _load_audio(audio: str | Path | tuple[np.ndarray, int] | Speech, fps: float) -> Speech:
    """Audio input -> :class:`Speech` (16 kHz mono + the input's own rate and channels);
    InputError for empty, truncated, too short or silent audio."""
    from a2v.audio import is_silent, resample

    if isinstance(audio, Speech):
        sp = audio
    elif isinstance(audio, tuple):
        wav, sr = np.asarray(audio[0], np.float32), int(audio[1])
        if wav.ndim != 1:
            raise InputError(f"audio samples must be mono (S,), got shape {wav.shape}")
        if wav.size == 0:
            raise InputError("audio has 0 samples (0-s audio); give a recording with speech")
        mono = resample(wav, sr, SR) if sr != SR else wav  # (S,)->(S16,)
        if is_silent(mono, sr=SR):
            raise InputError("the audio samples are silent (no 25 ms window above -60 dBFS): nothing to lip-sync")
        sp = Speech(np.clip(mono, -1, 1).astype(np.float32), np.clip(wav, -1, 1)[None], sr, "the audio samples")
    else:
        sp = load_speech(audio)
    if sp.mono.size < SR / fps:
        raise InputError(
            f"{sp.source} is shorter than one video frame ({sp.mono.size / SR * 1000:.0f} ms); give longer speech"
        )
    return sp


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _square(lm: np.ndarray) -> np.ndarray:
    """Integer square x0,y0,x1,y1 around landmarks (68,2) with CROP_MARGIN (unit scale crops are exact)."""
    lo, hi = lm.min(0), lm.max(0)
    side = float((hi - lo).max()) * (1 + 2 * CROP_MARGIN)
    c = (lo + hi) / 2
    x0, y0 = np.floor(c - side / 2).astype(int)
    s = int(np.ceil(side))
    return np.array([x0, y0, x0 + s, y0 + s], np.float64)


def _pick_face(dets, hw: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Largest face box (4,) of one frame's detections (ties: nearest the centre) and the face count."""
    from a2v.face import box_size_px

    if len(dets) == 0:
        return np.full(4, np.nan), 0
    size = box_size_px(dets.boxes)  # (N,)
    centre = np.array([hw[1], hw[0]]) / 2
    dist = np.linalg.norm((dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2 - centre, axis=1)  # (N,)
    j = int(np.lexsort((dist, -np.round(size)))[0])
    return dets.boxes[j].astype(np.float64), len(dets)


class _FaceRenderer:
    """Warps one face crop from template landmarks to driven landmarks and pastes it back."""

    def __init__(self, frame: np.ndarray, lm_tpl: np.ndarray) -> None:
        from a2v.face import CropTransform
        from a2v.face.warp import PiecewiseAffineWarp
        from a2v.recipes.lipsync.driven.interior import MouthColors

        sq = _square(lm_tpl)
        self.crop = CropTransform.from_box(sq, frame.shape[:2], size_px=int(sq[2] - sq[0]), margin_frac=0.0)
        self.face = self.crop.apply(frame)  # (S,S,3) exact copy (unit scale, integer offset)
        self.tpl = self.crop.points_to_crop(lm_tpl.astype(np.float64))  # (68,2) crop px
        mesh = drive_landmarks(self.tpl, np.array([0.7]), np.zeros(1))[0]  # open mouth: lip triangles exist
        self.warp = PiecewiseAffineWarp(self.tpl, self.face.shape[:2], mesh_points=mesh)
        self.colors = MouthColors.from_face(self.face, self.tpl)
        _, self.down, self.iod = face_axes(self.tpl)
        self.gap0 = max(float(inner_gap(self.tpl)), 0.0)

    def render(self, frame: np.ndarray, lm_drv: np.ndarray, feather_px: float) -> np.ndarray:
        from a2v.recipes.lipsync.driven.interior import paint_mouth

        drv = self.crop.points_to_crop(lm_drv.astype(np.float64))  # (68,2) crop px
        face = self.warp.warp(self.face, drv)  # (S,S,3)
        face = paint_mouth(face, drv, float(inner_gap(drv)) - self.gap0, self.iod, self.colors, self.down)
        return self.crop.paste_back(frame, face, feather_px=feather_px)


def _clip_frames(
    path: Path, fps: float, n_frames: int
) -> tuple[Iterator[np.ndarray] | list[np.ndarray], int, bool]:
    """Frames of a face clip for ``n_frames`` output frames: (frames, clip frames, ping-pong used).

    A clip at least as long as the audio is streamed; a shorter one is held in memory and
    ping-pong looped (0..n-1, n-2..1, ...).
    """
    from a2v.video import probe, read_frames

    info = probe(path)
    est = int(round(info.duration_s * fps))
    if est >= n_frames:
        return islice(read_frames(path, fps=fps), n_frames), est, False
    clip = list(islice(read_frames(path, fps=fps), MAX_CLIP_FRAMES + 1))
    if len(clip) > MAX_CLIP_FRAMES:
        raise InputError(
            f"face clip {path} is over {MAX_CLIP_FRAMES} frames yet shorter than the audio; trim it"
        )
    if not clip:
        raise InputError(f"face clip {path} has no frames")
    period = max(2 * len(clip) - 2, 1)
    idx = [(i % period) if (i % period) < len(clip) else period - (i % period) for i in range(n_frames)]
    return [clip[i] for i in idx], len(clip), len(clip) < n_frames


def _pad(frames, n: int) -> Iterator[np.ndarray]:
    """Yield ``n`` frames, repeating the last one if the stream ends early."""
    last = None
    count = 0
    for f in frames:
        if count >= n:
            return
        last = f
        count += 1
        yield f
    while count < n and last is not None:
        count += 1
        yield last


def generate_driven(
    face: str | Path,
    audio: str | Path | tuple[np.ndarray, int] | Speech,
    out: str | Path,
    *,
    transcript: str | None = None,
    fps: float = 25.0,
    mode: Mode = "auto",
    blink: bool = True,
    motion_scale: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    language: str = "auto",
    detector: str | object = "mtcnn",
    langid_model: str | Path | None = None,
) -> dict:
    """Animate a face photo or clip with speech; writes an H.264 mp4 (with the audio) to ``out``.

    face: photo (jpg/png/...) or video path. audio: file path (any format load_audio reads; the
    output keeps its sample rate and mono/stereo channels), (float32 (S,) in [-1, 1], sr Hz), or
    a :class:`~a2v.recipes.lipsync.inputs.Speech`. transcript: optional English text of the
    speech (forced alignment). fps: output frame rate. mode: "auto" | "phoneme" | "envelope" (see
    :mod:`.params`); language: one of :data:`~a2v.recipes.lipsync.driven.params.LANGUAGES`
    ("auto" = detect whether English phones fit; another code than "en" uses the envelope).
    blink: add spontaneous blinks (seeded by ``seed``). motion_scale: mouth motion gain.
    device: for face detection (MTCNN). detector: a name for :func:`a2v.face.make_detector`
    ("mtcnn", "dlib_hog", ...) or a detector object. langid_model: a multilingual Whisper folder
    (or cached hub id) whose language identification decides ``auto`` mode with ``language="auto"``
    and no transcript (:mod:`.langid`; reported as ``language_id``). Returns a report dict (JSON-ready).
    Raises InputError (one line) for a missing/unreadable input, no face, a face under
    MIN_FACE_PX, an image under MIN_IMAGE_PX, 0-s or silent audio.
    """
    from tqdm.auto import tqdm

    from a2v.audio import num_video_frames
    from a2v.face import DlibLandmarker, TrackConfig, make_detector, track_speaker
    from a2v.metrics.sync import loudness_envelope, mouth_opening, sync_correlation
    from a2v.video import VideoWriter, load_image

    t0 = time.perf_counter()
    times: dict[str, float] = {}
    face_path = require_file(face, "face photo or video")
    out = check_output_video(out)
    language = check_language(language)
    if langid_model is not None:
        from a2v.encoders.langid import check_langid_model

        check_langid_model(langid_model)  # missing or unusable folder: fail before any audio or face work
    if not fps > 0:
        raise InputError(f"fps must be > 0, got {fps}")
    speech = _load_audio(audio, fps)  # bad audio fails before any model loads
    wav = speech.mono  # (S,) 16 kHz
    n = num_video_frames(wav.size, SR, fps)
    report: dict = {
        "face": str(face_path),
        "output": str(out),
        "fps": fps,
        "frames": n,
        "duration_s": n / fps,
        "audio_sr": speech.sr,
        "audio_channels": int(speech.native.shape[0]),
    }
    is_photo = _is_image(face_path)
    img = _load_photo(face_path, report, load_image) if is_photo else None  # (H,W,3)
    if not is_photo:
        from a2v.recipes.lipsync.inputs import check_video_input

        check_video_input(face_path, "face clip")  # undecodable clip: fail before the detector loads

    det = make_detector(detector, device=device, min_size_px=20) if isinstance(detector, str) else detector
    landmarker = DlibLandmarker()
    if img is not None:
        box, n_faces = _pick_face(det.detect(img)[0], img.shape[:2])
        if n_faces == 0:
            raise InputError(
                f"no face found in {face_path}; give a photo with one clearly visible, frontal face"
            )
        size = float(max(box[2] - box[0], box[3] - box[1]))
        if size < MIN_FACE_PX:
            raise InputError(
                f"the face in {face_path} is only {size:.0f} px; need >= {MIN_FACE_PX} px (use a closer or larger photo)"
            )
        lm_photo = landmarker(img, box)  # (68,2)
        report.update(kind="photo", faces_found=n_faces, face_box=[round(float(v), 1) for v in box])
        if n_faces > 1:
            report["note"] = f"{n_faces} faces found; the largest was animated"
    else:
        frames, clip_n, looped = _clip_frames(face_path, fps, n)
        track = track_speaker(
            _pad(iter(frames) if isinstance(frames, list) else frames, n),
            det,
            TrackConfig(detect_every_frames=10, min_face_px=MIN_FACE_PX),
            progress=progress,
        )
        if not track.has_face.any():
            raise InputError(
                f"no face of >= {MIN_FACE_PX} px found in {face_path}; give a clip with a visible face"
            )
        if not isinstance(frames, list):  # streamed: decode again for the render pass
            frames, _, _ = _clip_frames(face_path, fps, n)
        first = int(np.flatnonzero(track.has_face)[0])
        report.update(
            kind="video",
            clip_frames=clip_n,
            ping_pong=looped,
            frames_without_face=track.n_missing,
            frame_size=list(track.frame_hw[::-1]),
            face_box=[round(float(v), 1) for v in track.boxes[first]],
        )
    times["face_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    lid = None
    if langid_model is not None:
        skip = _langid_skipped(mode, language, transcript)
        if skip:
            report["language_id_skipped"] = skip
        else:
            from a2v.recipes.lipsync.driven.langid import speech_language

            lid = speech_language(wav, SR, langid_model, device=device)
    open_, spread, pinfo = mouth_parameters(
        wav, SR, fps, n, transcript=transcript, mode=mode, language=language, language_id=lid
    )
    blinks, n_blinks = (
        blink_track(n, fps, np.random.default_rng(seed)) if blink else (np.zeros(n, np.float32), 0)
    )
    times["audio_s"] = time.perf_counter() - t1

    cfg = MotionConfig()
    drv_all = np.full((n, 68, 2), np.nan, np.float32)  # (F,68,2) driven landmarks, frame px
    if img is not None:
        drv_all = drive_landmarks(lm_photo, open_, spread, blinks, cfg, motion_scale)  # (F,68,2)
        renderer = _FaceRenderer(img, lm_photo)

        def make_frames() -> Iterator[np.ndarray]:
            feather = 0.04 * renderer.face.shape[0]
            for f in tqdm(range(n), disable=not progress, desc="talking photo", unit="fr"):
                yield renderer.render(img, drv_all[f], feather)
    else:

        def make_frames() -> Iterator[np.ndarray]:
            it = _pad(iter(frames) if isinstance(frames, list) else frames, n)
            for f, frame in enumerate(
                tqdm(it, total=n, disable=not progress, desc="talking video", unit="fr")
            ):
                if not track.has_face[f]:
                    yield frame  # no face: passed through unchanged (counted in frames_without_face)
                    continue
                lm = landmarker(frame, track.boxes[f])  # (68,2)
                drv_all[f] = drive_landmarks(
                    lm, open_[f : f + 1], spread[f : f + 1], blinks[f : f + 1], cfg, motion_scale
                )[0]
                r = _FaceRenderer(frame, lm)
                yield r.render(frame, drv_all[f], 0.04 * r.face.shape[0])

    t2 = time.perf_counter()
    with VideoWriter(out, fps=fps, audio=speech.native, audio_sr=speech.sr, crf=20, preset="veryfast") as writer:
        for frame in make_frames():
            writer.write(frame)
    times["render_s"] = time.perf_counter() - t2
    opening = mouth_opening(drv_all)  # (F,) of the driven landmarks
    corr, lag = sync_correlation(opening, loudness_envelope(wav, SR, fps, n), 5)
    from a2v.metrics.av_sync import av_sync

    av = av_sync(drv_all, wav, SR, fps)  # landmark sync measure on the driven landmarks
    times["total_s"] = time.perf_counter() - t0
    report.update(
        pinfo,
        blinks=n_blinks,
        motion_scale=motion_scale,
        seed=seed,
        driven_sync_corr=None if not np.isfinite(corr) else round(corr, 3),
        driven_sync_lag_frames=lag,
        driven_av_sync_conf=None if not np.isfinite(av["av_sync_conf"]) else round(av["av_sync_conf"], 3),
        driven_av_offset_frames=av["av_offset_frames"],
        seconds={k: round(v, 2) for k, v in times.items()},
    )
    return report


def _langid_skipped(mode: str, language: str, transcript: str | None) -> str:
    """Why a given language identifier is not run ("" = run it): only ``auto`` mode with ``language="auto"``
    and no transcript (the transcript is English text) has a language to decide."""
    if mode != "auto":
        return f"mode '{mode}' requested"
    if language != "auto":
        return f"language '{language}' given"
    return "transcript given (English)" if transcript else ""


def _load_photo(path: Path, report: dict, load_image) -> np.ndarray:
    """Photo -> uint8 (H,W,3), scaled down to MAX_SIDE_PX; InputError under MIN_IMAGE_PX a side."""
    img = load_image(path)  # (H,W,3)
    h, w = img.shape[:2]
    if min(h, w) < MIN_IMAGE_PX:
        raise InputError(f"image {path} is only {w}x{h} px; give a photo at least {MIN_IMAGE_PX} px a side")
    if max(h, w) > MAX_SIDE_PX:
        import cv2

        k = MAX_SIDE_PX / max(h, w)
        img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)  # (H,W,3)->(h,w,3)
        report["resized_from"] = [w, h]
    report["frame_size"] = [img.shape[1], img.shape[0]]
    return img
