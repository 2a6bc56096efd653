"""Face tracks: detect every N frames and interpolate box corners in between.

Two policies share one keyframe detector:

* :func:`track_strict` (dataset preparation, talk paper): every keyframe must hold exactly one face
  of at least ``min_face_px``; otherwise the clip is dropped and a :class:`DropReason` says why
  (``no_face``, ``face_too_small``, ``multiple_faces``, ``face_jump``, ``no_frames``).
* :func:`track_speaker` (inference): never aborts. It picks the speaking face (a user box, else the
  largest or the most central face, then the face overlapping the previous choice) and leaves
  frames without a face as NaN rows, so callers pass those frames through unchanged.

Defaults follow the talk paper: detect every 10 frames, faces of at least 200 px. 200 px suits
1080p-ish footage; GRID (360x288) faces are ~100-130 px, so lower ``min_face_px`` there.
Frames are RGB ``uint8 (H,W,3)``; any iterable works (frames are streamed, one kept in memory
plus a batch of keyframes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from a2v.errors import InputError
from a2v.face.detect import Detections, FaceDetector, box_size_px

DropCode = Literal["no_frames", "no_face", "face_too_small", "multiple_faces", "face_jump"]


@dataclass(frozen=True)
class TrackConfig:
    """Tracking settings (talk paper defaults).

    detect_every_frames: run the detector on frames 0, N, 2N, ... and on the last frame.
    min_face_px: smallest accepted face, longer box side in pixels (talk paper: 200 px at ~1080p).
    select: inference choice of the speaking face when no user box is given.
    min_keyframe_iou: strict mode drops a clip whose face box jumps (IoU between consecutive
        keyframe boxes below this: a cut or a different person); 0 disables the check.
    batch_frames: keyframes sent to the detector at once.
    """

    detect_every_frames: int = 10
    min_face_px: float = 200.0
    select: Literal["largest", "central"] = "largest"
    min_keyframe_iou: float = 0.2
    batch_frames: int = 16


@dataclass(frozen=True)
class FaceTrack:
    """One face over a clip.

    boxes: float32 (F,4) x0,y0,x1,y1 px per frame; NaN rows where there is no face.
    detected: bool (F,) True where the detector ran and gave the box (False: interpolated/held/none).
    scores: float32 (F,) detector score on detected frames, NaN elsewhere.
    frame_hw: (H, W) of the frames in pixels.
    """

    boxes: np.ndarray
    detected: np.ndarray
    scores: np.ndarray
    frame_hw: tuple[int, int]

    @property
    def n_frames(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def has_face(self) -> np.ndarray:
        """bool (F,): frames with a box."""
        return ~np.isnan(self.boxes[:, 0])

    @property
    def n_missing(self) -> int:
        """Number of frames without a face (passed through unchanged at inference)."""
        return int((~self.has_face).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN -> None)."""
        boxes = [None if np.isnan(b[0]) else [round(float(v), 3) for v in b] for b in self.boxes]
        scores = [None if np.isnan(s) else round(float(s), 5) for s in self.scores]
        return {
            "frame_hw": list(self.frame_hw),
            "boxes": boxes,
            "detected": self.detected.tolist(),
            "scores": scores,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> FaceTrack:
        boxes = np.array([[np.nan] * 4 if b is None else b for b in d["boxes"]], np.float32).reshape(-1, 4)
        scores = np.array([np.nan if s is None else s for s in d["scores"]], np.float32)
        return FaceTrack(boxes, np.asarray(d["detected"], bool), scores, tuple(d["frame_hw"]))


@dataclass(frozen=True)
class DropReason:
    """Why a clip was dropped in dataset preparation: ``code``, first offending ``frame``, ``detail``."""

    code: DropCode
    frame: int
    detail: str


@dataclass(frozen=True)
class TrackResult:
    """Result of :func:`track_strict`: exactly one of ``track`` / ``dropped`` is set."""

    track: FaceTrack | None
    dropped: DropReason | None


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with boxes (N,4) -> (N,). Plain numpy: 5 lines, no torch round trip."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def keyframe_indices(n_frames: int, every: int) -> np.ndarray:
    """Frames the detector runs on: 0, N, 2N, ... and the last frame -> int64 (K,)."""
    idx = np.arange(0, n_frames, every)
    if n_frames > 0 and idx[-1] != n_frames - 1:
        idx = np.append(idx, n_frames - 1)
    return idx


def interpolate_boxes(key_idx: np.ndarray, key_boxes: np.ndarray, n_frames: int) -> np.ndarray:
    """Linear interpolation of box corners between keyframes.

    key_idx: int (K,) increasing frame indices; key_boxes: float (K,4). Returns float32 (F,4);
    frames outside [key_idx[0], key_idx[-1]] hold the nearest keyframe box.
    """
    t = np.arange(n_frames)
    cols = [np.interp(t, key_idx, key_boxes[:, c]) for c in range(4)]  # 4 x (F,)
    return np.stack(cols, axis=1).astype(np.float32)  # (F,4)


def iter_keyframe_detections(
    frames: Iterable[np.ndarray], detector: FaceDetector, cfg: TrackConfig, progress: bool = False
) -> Iterator[tuple[int, Detections, tuple[int, int], bool]]:
    """Stream frames, detect on keyframes; yields ``(frame_index, detections, (H,W), is_last)``.

    The last frame is always a keyframe (it is known only when the stream ends, so it is kept).
    """
    from tqdm.auto import tqdm

    every = max(1, int(cfg.detect_every_frames))
    total = len(frames) if isinstance(frames, Sequence | np.ndarray) else None
    pending: list[tuple[int, np.ndarray]] = []
    last: tuple[int, np.ndarray] | None = None

    def flush(final: bool) -> Iterator[tuple[int, Detections, tuple[int, int], bool]]:
        dets = detector.detect([f for _, f in pending])
        for k, ((i, f), d) in enumerate(zip(pending, dets, strict=True)):
            yield i, d, f.shape[:2], final and k == len(pending) - 1
        pending.clear()

    for i, frame in enumerate(tqdm(frames, total=total, disable=not progress, desc="face track", unit="fr")):
        if i % every == 0:
            pending.append((i, frame))
            last = None
            if len(pending) >= cfg.batch_frames:
                yield from flush(final=False)
        else:
            last = (i, frame)
    if last is not None:
        pending.append(last)
    if pending:
        yield from flush(final=True)


def _face_size_check(d: Detections, min_face_px: float) -> tuple[Detections, Detections]:
    """Split detections into (big enough, too small)."""
    ok = box_size_px(d.boxes) >= min_face_px
    return Detections(d.boxes[ok], d.scores[ok]), Detections(d.boxes[~ok], d.scores[~ok])


def track_strict(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    cfg: TrackConfig = TrackConfig(),
    progress: bool = False,
) -> TrackResult:
    """Dataset policy: exactly one face >= ``min_face_px`` on every keyframe, else drop with a reason.

    Faces smaller than ``min_face_px`` beside one valid face are ignored (background people).
    Stops reading at the first offending keyframe batch.
    """
    idx: list[int] = []
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    hw: tuple[int, int] = (0, 0)
    for i, d, fhw, _ in iter_keyframe_detections(frames, detector, cfg, progress):
        hw = fhw
        big, small = _face_size_check(d, cfg.min_face_px)
        if len(big) == 0:
            if len(small):
                size = float(box_size_px(small.boxes).max())
                why = DropReason(
                    "face_too_small", i, f"largest face {size:.0f} px < min_face_px {cfg.min_face_px:g}"
                )
            else:
                why = DropReason("no_face", i, "no face detected")
            return TrackResult(None, why)
        if len(big) > 1:
            return TrackResult(
                None, DropReason("multiple_faces", i, f"{len(big)} faces >= {cfg.min_face_px:g} px")
            )
        if boxes and cfg.min_keyframe_iou > 0:
            iou = float(box_iou(boxes[-1], big.boxes)[0])
            if iou < cfg.min_keyframe_iou:
                return TrackResult(
                    None, DropReason("face_jump", i, f"box IoU {iou:.2f} with previous keyframe {idx[-1]}")
                )
        idx.append(i)
        boxes.append(big.boxes[0])
        scores.append(float(big.scores[0]))
    if not idx:
        return TrackResult(None, DropReason("no_frames", 0, "the clip has no video frames"))
    n = idx[-1] + 1
    key_idx = np.asarray(idx)
    out_boxes = interpolate_boxes(key_idx, np.stack(boxes), n)  # (K,4)->(F,4)
    detected = np.zeros(n, bool)
    detected[key_idx] = True
    out_scores = np.full(n, np.nan, np.float32)
    out_scores[key_idx] = scores
    return TrackResult(FaceTrack(out_boxes, detected, out_scores, hw), None)


def _choose(
    d: Detections, ref: np.ndarray | None, hw: tuple[int, int], select: str, strict_ref: bool
) -> int | None:
    """Index of the speaking face among ``d`` or None.

    With a reference box: the detection overlapping it most (IoU >= 0.1). Without one (or when
    nothing overlaps and ``strict_ref`` is False): the largest or the most central face.
    """
    if len(d) == 0:
        return None
    if ref is not None:
        iou = box_iou(ref, d.boxes)
        if iou.max() >= 0.1:
            return int(iou.argmax())
        if strict_ref:
            return None
    if select == "central":
        centre = np.array([hw[1] / 2, hw[0] / 2])
        c = (d.boxes[:, :2] + d.boxes[:, 2:]) / 2  # (N,2)
        return int(np.linalg.norm(c - centre, axis=1).argmin())
    if select == "largest":
        return int(box_size_px(d.boxes).argmax())
    raise InputError(f"unknown face selection '{select}' (choose 'largest' or 'central')")


def track_speaker(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    cfg: TrackConfig = TrackConfig(),
    user_box: Sequence[float] | None = None,
    progress: bool = False,
) -> FaceTrack:
    """Inference policy: never aborts; frames without the face get NaN boxes (pass them through).

    user_box: optional (x0, y0, x1, y1) px marking the speaker; only faces overlapping it (then
    the previously chosen face) are taken. Between two keyframes with overlapping boxes the corners
    are interpolated; otherwise each frame holds the box of its nearest keyframe (ties: earlier),
    which is NaN when that keyframe had no face.
    """
    ref = None if user_box is None else np.asarray(user_box, np.float32).reshape(4)
    idx: list[int] = []
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    hw: tuple[int, int] = (0, 0)
    for i, d, hw, _ in iter_keyframe_detections(frames, detector, cfg, progress):
        big, _ = _face_size_check(d, cfg.min_face_px)
        j = _choose(big, ref, hw, cfg.select, strict_ref=user_box is not None)
        idx.append(i)
        if j is None:
            boxes.append(np.full(4, np.nan, np.float32))
            scores.append(np.nan)
        else:
            boxes.append(big.boxes[j])
            scores.append(float(big.scores[j]))
            ref = big.boxes[j]
    if not idx:
        raise InputError("face tracking got no video frames (empty or unreadable video)")
    n = idx[-1] + 1
    key_idx = np.asarray(idx)
    key_boxes = np.stack(boxes)  # (K,4)
    t = np.arange(n)
    b = np.searchsorted(key_idx, t).clip(1, len(key_idx) - 1) if len(key_idx) > 1 else np.zeros(n, int)
    a = np.maximum(b - 1, 0)
    ka, kb = key_idx[a], key_idx[b]
    nearest = np.where(t - ka <= kb - t, a, b)  # (F,) keyframe slot nearest to each frame
    out = key_boxes[nearest].copy()  # (F,4)
    both = ~np.isnan(key_boxes[a, 0]) & ~np.isnan(key_boxes[b, 0])
    same = np.zeros(n, bool)
    for s in np.unique(a[both]):  # consecutive keyframe pairs that both hold a face
        same[a == s] = box_iou(key_boxes[s], key_boxes[s + 1 : s + 2])[0] > 0
    w = ((t - ka) / np.maximum(kb - ka, 1))[:, None]  # (F,1) interpolation weight
    lerp = (1 - w) * key_boxes[a] + w * key_boxes[b]  # (F,4)
    out[same & both] = lerp[same & both]
    detected = np.zeros(n, bool)
    detected[key_idx] = ~np.isnan(key_boxes[:, 0])
    out_scores = np.full(n, np.nan, np.float32)
    out_scores[key_idx] = scores
    return FaceTrack(out.astype(np.float32), detected, out_scores, hw)
