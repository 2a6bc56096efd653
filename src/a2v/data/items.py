"""Standard talking-face extraction of one video (talk paper data pipeline) for ``a2v prepare``.

Two streaming passes over the frames, each read at the target fps with constant-frame-rate
resampling and rotation applied (a2v.video.read_frames):

1. Track: frames are decoded shrunk to the detection size and fed to
   :func:`a2v.face.track.track_strict`, which runs the detector on keyframes 0, N, 2N, ... and the
   last frame in batches and interpolates the boxes in between. A clip that fails the strict
   policy stops here, before any landmark or crop work.
2. Render: frames are decoded again at full size; each gets dlib 68 landmarks on its box and a
   square crop encoded on the fly into ``crop.mp4`` (H.264).

Decoding twice keeps memory constant in frames (one full frame, plus a batch of small keyframes
in pass 1) and lets the detector see keyframes in batches. Per-frame outputs are small arrays
(~1.1 KB/frame); the audio is held as an array (64 KB/s at 16 kHz).

Strict policy (a2v.face.track.track_strict): every keyframe must hold exactly one face
>= ``min_face_px``, else the clip is dropped with a reason: no_face, face_too_small,
multiple_faces, face_jump, no_frames. Other reasons: corrupt (unreadable video), no_audio,
bad_audio, too_short (below ``min_duration_s``), av_mismatch (audio and video lengths differ by
more than ``max_av_offset_s``).

The audio is cut or zero-padded to the video's length, so S = F * audio_sr / fps exactly (the
difference is kept in ``meta.json`` as ``audio_pad_samples``: > 0 padded, < 0 cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from a2v.data.prepare import DropItem, PrepareConfig
from a2v.device import resolve_device
from a2v.errors import InputError


class ScaledDetector:
    """Detector for frames decoded at ``1/scale_xy`` of the source size: boxes come back in source px.

    scale_xy: (sx, sy) = source width / detection width, source height / detection height.
    """

    def __init__(self, detector: Any, scale_xy: tuple[float, float] = (1.0, 1.0)) -> None:
        self.detector = detector
        self.scale = np.array([*scale_xy, *scale_xy], np.float32)  # (4,) x0,y0,x1,y1 factors
        self.calls = 0

    def detect(self, frames: Sequence[np.ndarray]) -> list[Any]:
        from a2v.face.detect import Detections

        self.calls += 1
        return [Detections(d.boxes * self.scale, d.scores) for d in self.detector.detect(frames)]  # (N,4)


class TalkingFaceExtractor:
    """``extract(source, item_id, work_dir) -> sample members`` for :func:`a2v.data.prepare_dataset`.

    Members (F frames at ``cfg.fps``, S = F * audio_sr / fps samples, C = ``cfg.crop_size_px``):
    audio.npy float32 (S,) mono in [-1, 1] at ``cfg.audio_sr``; mfcc.npy float32 (T,13) at 100 Hz
    (a2v.audio.mfcc); boxes.npy float32 (F,4) x0,y0,x1,y1 source px; detected.npy bool (F,) keyframes;
    landmarks.npy float32 (F,68,2) source px; crop.mp4 H.264 C x C at fps (a Path in work_dir);
    crop_matrices.npy float32 (F,2,3) frame px -> crop px; crop_landmarks.npy float32 (F,68,2) crop px;
    meta.json {fps, n_frames, width, height, duration_s, source, audio_sr, n_samples, ...}.

    ``detector`` (a2v.face.detect.FaceDetector) / ``landmarker`` ((frame, box) -> (68,2)) default
    to the configured ones, built on first use (once per worker).
    """

    def __init__(
        self, cfg: PrepareConfig = PrepareConfig(), detector: Any = None, landmarker: Any = None
    ) -> None:
        self.cfg = cfg
        self._detector = detector
        self._landmarker = landmarker

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from a2v.face.detect import make_detector

            name = "dlib_hog" if self.cfg.detector == "dlib" else self.cfg.detector
            self._detector = make_detector(
                name, device=resolve_device(self.cfg.device), min_size_px=self.min_search_px
            )
        return self._detector

    @property
    def min_search_px(self) -> float:
        """Smallest face the detector searches (detection px): half the accepted size, in [12, 40],
        so faces a little under ``min_face_px`` are found and reported as too small."""
        return float(min(max(self.cfg.min_face_px / 2, 12.0), 40.0))

    def detection_scale(self, hw: tuple[int, int]) -> float:
        """Shrink factor (<= 1) of frames (H,W) before detection: the longer side is at most
        ``detect_max_side_px`` and the smallest accepted face stays >= 2 * ``min_search_px``
        (faces down to half the accepted size are still found). Keeps MTCNN fast on HD/4K input."""
        s = min(1.0, self.cfg.detect_max_side_px / max(hw))
        if self.cfg.min_face_px > 0:
            s = min(s, 2 * self.min_search_px / self.cfg.min_face_px)
        return s

    @property
    def landmarker(self) -> Any:
        if self._landmarker is None:
            from a2v.face.landmarks import DlibLandmarker

            self._landmarker = DlibLandmarker()
        return self._landmarker

    def __call__(self, source: Path, item_id: str, work_dir: Path) -> dict[str, Any]:
        from a2v.audio import load_audio, mfcc
        from a2v.video import probe

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
            wav = load_audio(source, sr=cfg.audio_sr)  # (S0,)
        except InputError as e:
            raise DropItem("bad_audio", str(e)) from None

        track = self.track(source, (info.height, info.width))  # pass 1
        n = track.n_frames
        if n / cfg.fps < cfg.min_duration_s:
            raise DropItem(
                "too_short", f"{n} frames at {cfg.fps:g} fps < min_duration_s {cfg.min_duration_s:g}"
            )
        n_samples = round(n * cfg.audio_sr / cfg.fps)  # video length in audio samples
        if abs(wav.shape[0] - n_samples) / cfg.audio_sr > cfg.max_av_offset_s:
            raise DropItem(
                "av_mismatch",
                f"audio {wav.shape[0] / cfg.audio_sr:.2f} s vs video {n / cfg.fps:.2f} s "
                f"(more than max_av_offset_s {cfg.max_av_offset_s:g} apart)",
            )
        pad = n_samples - wav.shape[0]
        wav = np.pad(wav, (0, pad)) if pad > 0 else wav[:n_samples]  # (S0,)->(S,) S = F*sr/fps
        feats = mfcc(wav, cfg.audio_sr)  # (S,)->(T,13)

        crop_path = Path(work_dir) / "crop.mp4"
        out = self.render(source, track.boxes, crop_path)  # pass 2
        h, w = out["frame_hw"]
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
            "boxes.npy": track.boxes.astype(np.float32),  # (F,4)
            "detected.npy": track.detected.astype(bool),  # (F,)
            "landmarks.npy": out["landmarks"],  # (F,68,2)
            "crop.mp4": crop_path,
            "crop_matrices.npy": out["matrices"],  # (F,2,3)
            "crop_landmarks.npy": out["crop_landmarks"],  # (F,68,2)
            "meta.json": meta,
        }

    def track(self, source: Path, hw: tuple[int, int]) -> Any:
        """Pass 1: the strict face track (a2v.face.track.FaceTrack, boxes in source px) or DropItem."""
        from a2v.face.track import TrackConfig, track_strict
        from a2v.video import read_frames

        cfg = self.cfg
        s = self.detection_scale(hw)
        size = (max(2, round(hw[0] * s)), max(2, round(hw[1] * s))) if s < 1 else None  # detection (H,W)
        scale_xy = (hw[1] / size[1], hw[0] / size[0]) if size else (1.0, 1.0)
        tcfg = TrackConfig(
            detect_every_frames=cfg.detect_every_frames,
            min_face_px=cfg.min_face_px,
            min_keyframe_iou=cfg.min_keyframe_iou,
            batch_frames=cfg.detect_batch_frames,
        )
        try:
            res = track_strict(
                read_frames(source, fps=cfg.fps, size=size), ScaledDetector(self.detector, scale_xy), tcfg
            )
        except InputError as e:
            raise DropItem("corrupt", str(e)) from None
        if res.dropped is not None:
            detail = res.dropped.detail
            if res.dropped.code == "no_face":
                detail += f" (faces under {self.min_search_px * max(scale_xy):g} px are not searched)"
            raise DropItem(res.dropped.code, f"frame {res.dropped.frame}: {detail}")
        return res.track

    def render(self, source: Path, boxes: np.ndarray, crop_path: Path) -> dict[str, Any]:
        """Pass 2: landmarks and crops of each frame on its box (F,4) source px; crops -> ``crop_path``.

        Returns landmarks float32 (F,68,2) source px, matrices float32 (F,2,3), crop_landmarks
        float32 (F,68,2) crop px, frame_hw (H,W).
        """
        from a2v.face.crop import CropTransform
        from a2v.video import VideoWriter, read_frames

        cfg = self.cfg
        n = boxes.shape[0]
        lms, mats, crop_lms = [], [], []
        hw: tuple[int, int] = (0, 0)
        try:
            with VideoWriter(crop_path, cfg.fps, crf=cfg.crop_crf, preset=cfg.crop_preset) as writer:
                for i, frame in enumerate(read_frames(source, fps=cfg.fps)):
                    if i >= n:
                        raise DropItem("corrupt", f"second read gave more than the {n} frames of the first")
                    hw = frame.shape[:2]
                    lm = np.asarray(self.landmarker(frame, boxes[i]), np.float32)  # (68,2) frame px
                    t = CropTransform.from_box(boxes[i], hw, cfg.crop_size_px, cfg.margin_frac)
                    writer.write(t.apply(frame))  # (H,W,3)->(C,C,3)
                    lms.append(lm)
                    mats.append(t.matrix.astype(np.float32))  # (2,3)
                    crop_lms.append(t.points_to_crop(lm).astype(np.float32))  # (68,2) crop px
        except InputError as e:
            raise DropItem("corrupt", str(e)) from None
        if len(lms) != n:
            raise DropItem("corrupt", f"second read gave {len(lms)} frames, the first {n}")
        return {
            "landmarks": np.stack(lms),  # F x (68,2) -> (F,68,2)
            "matrices": np.stack(mats),  # F x (2,3) -> (F,2,3)
            "crop_landmarks": np.stack(crop_lms),  # F x (68,2) -> (F,68,2)
            "frame_hw": hw,
        }
