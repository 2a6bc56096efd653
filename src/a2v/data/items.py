"""Standard talking-face extraction of one video (talk paper data pipeline) for ``a2v prepare``.

One streaming pass over the frames, read at the target fps with constant-frame-rate resampling
and rotation applied (a2v.video.read_frames). The detector runs on keyframes 0, N, 2N, ... and the
last frame; boxes are interpolated linearly in between (bounded look-ahead: at most N frames are
buffered). Each frame then gets dlib 68 landmarks on its box and a square crop encoded on the fly
into ``crop.mp4`` (H.264). Memory per video is constant in frames (N+1 frames); per-frame outputs
are small arrays (~1.1 KB/frame) and the audio is an array (64 KB/s at 16 kHz).

Strict policy (a2v.face.track.track_strict semantics): every keyframe must hold exactly one face
>= ``min_face_px``, else the clip is dropped with a reason: no_face, face_too_small,
multiple_faces, face_jump. Other reasons: corrupt (unreadable video), no_audio, bad_audio,
too_short (below ``min_duration_s``), av_mismatch (audio and video lengths differ by more than
``max_av_offset_s``).

The audio is cut or zero-padded to the video's length, so S = F * audio_sr / fps exactly (the
difference is kept in ``meta.json`` as ``audio_pad_samples``: > 0 padded, < 0 cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from a2v.data.prepare import DropItem, PrepareConfig, resolve_device
from a2v.errors import InputError


class ScaledDetector:
    """Run ``detector`` on frames shrunk by ``min(1, max_side_px / longer side, max_scale)``; boxes
    come back in source pixels. Keeps MTCNN fast and bounded on HD/4K input: with ``max_scale`` =
    2 * detector floor / min_face_px, the smallest accepted face is still twice the smallest face
    the detector searches, so faces down to half the accepted size are found (and reported)."""

    def __init__(self, detector: Any, max_side_px: int, max_scale: float = 1.0) -> None:
        self.detector, self.max_side_px, self.max_scale = detector, int(max_side_px), float(max_scale)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Any]:
        import cv2

        from a2v.face.detect import Detections

        out = []
        for f in frames:
            s = min(1.0, self.max_side_px / max(f.shape[:2]), self.max_scale)
            if s < 1.0:
                size = (max(1, round(f.shape[1] * s)), max(1, round(f.shape[0] * s)))
                small = cv2.resize(f, size, interpolation=cv2.INTER_AREA)  # (H,W,3)->(h,w,3)
                d = self.detector.detect([small])[0]
                sx, sy = f.shape[1] / size[0], f.shape[0] / size[1]
                scale = np.array([sx, sy, sx, sy], np.float32)
                out.append(Detections(d.boxes * scale, d.scores))  # (N,4) back to source px
            else:
                out.append(self.detector.detect([f])[0])
        return out


class TalkingFaceExtractor:
    """``extract(source, item_id, work_dir) -> sample members`` for :func:`a2v.data.prepare_dataset`.

    Members (F frames at ``cfg.fps``, S samples at ``cfg.audio_sr``, C = ``cfg.crop_size_px``):
    audio.npy float32 (S,) mono in [-1, 1]; mfcc.npy float32 (T,13) at 100 Hz (a2v.audio.mfcc);
    boxes.npy float32 (F,4) x0,y0,x1,y1 source px; detected.npy bool (F,) keyframes;
    landmarks.npy float32 (F,68,2) source px; crop.mp4 H.264 C x C at fps (a Path in work_dir);
    crop_matrices.npy float32 (F,2,3) frame px -> crop px; crop_landmarks.npy float32 (F,68,2) crop px;
    meta.json {fps, n_frames, width, height, duration_s, source, audio_sr, n_samples, ...}.

    ``detector`` / ``landmarker`` default to the configured ones, built on first use (once per worker).
    """

    def __init__(
        self, cfg: PrepareConfig = PrepareConfig(), detector: Any = None, landmarker: Any = None
    ) -> None:
        self.cfg = cfg
        self._detector = detector
        self._landmarker = landmarker

    @property
    def detector(self) -> ScaledDetector:
        if self._detector is None:
            from a2v.face.detect import make_detector

            name = "dlib_hog" if self.cfg.detector == "dlib" else self.cfg.detector
            self._detector = make_detector(
                name, device=resolve_device(self.cfg.device), min_size_px=self.min_search_px
            )
        max_scale = 2 * self.min_search_px / self.cfg.min_face_px if self.cfg.min_face_px > 0 else 1.0
        return ScaledDetector(self._detector, self.cfg.detect_max_side_px, max_scale)

    @property
    def min_search_px(self) -> float:
        """Smallest face the detector searches (detection px): half the accepted size, in [12, 40],
        so faces a little under ``min_face_px`` are found and reported as too small."""
        return float(min(max(self.cfg.min_face_px / 2, 12.0), 40.0))

    @property
    def landmarker(self) -> Any:
        if self._landmarker is None:
            from a2v.face.landmarks import DlibLandmarker

            self._landmarker = DlibLandmarker()
        return self._landmarker

    def _keyframe_box(self, frame: np.ndarray, index: int, prev: np.ndarray | None) -> np.ndarray:
        """Strict check of one keyframe -> its face box float32 (4,) source px, or DropItem."""
        from a2v.face.track import TrackConfig, box_iou, track_strict

        tcfg = TrackConfig(detect_every_frames=1, min_face_px=self.cfg.min_face_px, min_keyframe_iou=0.0)
        res = track_strict([frame], self.detector, tcfg)  # one frame: the track_strict rules
        if res.dropped is not None:
            detail = res.dropped.detail
            if res.dropped.code == "no_face":
                detail += f" (faces under {self.min_search_px:g} detector px are not searched)"
            raise DropItem(res.dropped.code, f"frame {index}: {detail}")
        box = res.track.boxes[0]
        if prev is not None and self.cfg.min_keyframe_iou > 0:
            iou = float(box_iou(prev, box[None])[0])
            if iou < self.cfg.min_keyframe_iou:
                raise DropItem("face_jump", f"frame {index}: box IoU {iou:.2f} with the previous keyframe")
        return box

    def __call__(self, source: Path, item_id: str, work_dir: Path) -> dict[str, Any]:
        from a2v.audio import load_audio, mfcc
        from a2v.video import VideoWriter, probe

        cfg = self.cfg
        try:
            info = probe(source)
        except InputError as e:
            raise DropItem("corrupt", str(e)) from None
        if info.duration_s < cfg.min_duration_s:
            raise DropItem("too_short", f"{info.duration_s:.2f} s < min_duration_s {cfg.min_duration_s:g}")
        if not info.has_audio:
            raise DropItem("no_audio", "the video has no audio track")
        try:
            wav = load_audio(source, sr=cfg.audio_sr)  # (S,)
        except InputError as e:
            raise DropItem("bad_audio", str(e)) from None

        crop_path = Path(work_dir) / "crop.mp4"
        out = _TrackOutputs(self, crop_path)
        try:
            with VideoWriter(crop_path, cfg.fps, crf=cfg.crop_crf, preset=cfg.crop_preset) as writer:
                out.writer = writer
                n = self._stream(source, out)
        except InputError as e:
            raise DropItem("corrupt", str(e)) from None
        if n / cfg.fps < cfg.min_duration_s:
            raise DropItem(
                "too_short", f"{n} frames at {cfg.fps:g} fps < min_duration_s {cfg.min_duration_s:g}"
            )
        n_samples = round(n * cfg.audio_sr / cfg.fps)  # video length in audio samples
        offset_s = (wav.shape[0] - n_samples) / cfg.audio_sr
        if abs(offset_s) > cfg.max_av_offset_s:
            raise DropItem(
                "av_mismatch",
                f"audio {wav.shape[0] / cfg.audio_sr:.2f} s vs video {n / cfg.fps:.2f} s "
                f"(more than max_av_offset_s {cfg.max_av_offset_s:g} apart)",
            )
        pad = n_samples - wav.shape[0]
        wav = np.pad(wav, (0, pad)) if pad > 0 else wav[:n_samples]  # (S0,)->(S,) S = F*sr/fps
        feats = mfcc(wav, cfg.audio_sr)  # (S,)->(T,13)
        h, w = out.frame_hw
        meta = {
            "id": item_id,
            "source": str(source),
            "fps": float(cfg.fps),
            "n_frames": n,
            "width": int(w),
            "height": int(h),
            "duration_s": n / cfg.fps,
            "audio_sr": int(cfg.audio_sr),
            "n_samples": int(wav.shape[0]),
            "audio_pad_samples": int(pad),
            "source_fps": float(info.fps),
            "rotation_deg": int(info.rotation_deg),
            "crop_size_px": int(cfg.crop_size_px),
            "margin_frac": float(cfg.margin_frac),
            "detect_every_frames": int(cfg.detect_every_frames),
        }
        return {
            "audio.npy": wav.astype(np.float32),
            "mfcc.npy": feats.astype(np.float32),
            "boxes.npy": np.stack(out.boxes).astype(np.float32),  # F x (4,) -> (F,4)
            "detected.npy": np.asarray(out.detected, bool),  # (F,)
            "landmarks.npy": np.stack(out.landmarks).astype(np.float32),  # (F,68,2)
            "crop.mp4": crop_path,
            "crop_matrices.npy": np.stack(out.matrices).astype(np.float32),  # (F,2,3)
            "crop_landmarks.npy": np.stack(out.crop_landmarks).astype(np.float32),  # (F,68,2)
            "meta.json": meta,
        }

    def _stream(self, source: Path, out: _TrackOutputs) -> int:
        """One pass: keyframe detection, interpolation over a buffer of <= N frames; returns F."""
        from a2v.video import read_frames

        every = self.cfg.detect_every_frames
        buf: list[np.ndarray] = []  # frames since the last keyframe (buf[0] is that keyframe)
        k0, b0 = -1, None
        n = 0
        for i, frame in enumerate(read_frames(source, fps=self.cfg.fps)):
            n = i + 1
            if i % every == 0:
                box = self._keyframe_box(frame, i, b0)
                if b0 is not None:
                    out.emit_segment(buf, k0, b0, i, box)
                buf, k0, b0 = [frame], i, box
            else:
                buf.append(frame)
        if b0 is None:
            return 0
        last = n - 1
        if last != k0:  # the last frame is a keyframe too (known only at the end of the stream)
            box = self._keyframe_box(buf[-1], last, b0)
            out.emit_segment(buf[:-1], k0, b0, last, box)
            out.emit(buf[-1], box, True)
        else:
            out.emit(buf[0], b0, True)
        return n


class _TrackOutputs:
    """Per-frame results of one video, filled frame by frame (landmarks, crop written at once)."""

    def __init__(self, ex: TalkingFaceExtractor, crop_path: Path) -> None:
        self.ex, self.crop_path, self.writer = ex, crop_path, None
        self.boxes: list[np.ndarray] = []
        self.detected: list[bool] = []
        self.landmarks: list[np.ndarray] = []
        self.matrices: list[np.ndarray] = []
        self.crop_landmarks: list[np.ndarray] = []
        self.frame_hw: tuple[int, int] = (0, 0)

    def emit_segment(
        self, frames: list[np.ndarray], k0: int, b0: np.ndarray, k1: int, b1: np.ndarray
    ) -> None:
        """Frames k0..k0+len-1 between keyframes k0 (box b0) and k1 (box b1): interpolated boxes."""
        from a2v.face.track import interpolate_boxes

        boxes = interpolate_boxes(np.array([0, k1 - k0]), np.stack([b0, b1]), len(frames))  # (2,4)->(len,4)
        for j, (f, b) in enumerate(zip(frames, boxes, strict=True)):
            self.emit(f, b, j == 0)

    def emit(self, frame: np.ndarray, box: np.ndarray, detected: bool) -> None:
        from a2v.face.crop import CropTransform

        cfg = self.ex.cfg
        self.frame_hw = frame.shape[:2]
        lm = self.ex.landmarker(frame, box)  # (68,2) frame px
        t = CropTransform.from_box(box, self.frame_hw, cfg.crop_size_px, cfg.margin_frac)
        self.writer.write(t.apply(frame))  # (H,W,3)->(C,C,3)
        self.boxes.append(np.asarray(box, np.float32))
        self.detected.append(bool(detected))
        self.landmarks.append(lm)
        self.matrices.append(t.matrix.astype(np.float32))  # (2,3)
        self.crop_landmarks.append(t.points_to_crop(lm).astype(np.float32))  # (68,2) crop px
