"""Face detection behind one interface: MTCNN (default), dlib HOG / CNN (MMOD), MediaPipe (optional).

Every detector takes RGB frames ``uint8 (F,H,W,3)`` (or a list of ``(H,W,3)``) and returns one
:class:`Detections` per frame: boxes ``float32 (N,4)`` as ``x0, y0, x1, y1`` in pixels of that frame
(continuous coordinates: pixel ``i`` spans ``[i, i+1)``) and scores ``float32 (N,)``, sorted by
decreasing score. Detectors return every face they find; the size threshold (``min_face_px``)
is applied by :mod:`a2v.face.track` so that "no face" and "face too small" can be told apart.

All weights ship inside the pip packages (facenet-pytorch, face-recognition-models); nothing is
downloaded. Packages are imported lazily with an install hint.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from a2v.errors import InputError, MissingDependencyError, MissingWeightsError, missing_package

DetectorName = Literal["mtcnn", "dlib_hog", "dlib_cnn", "mediapipe"]


@dataclass(frozen=True)
class Detections:
    """Faces found in one frame: ``boxes`` float32 (N,4) x0,y0,x1,y1 px; ``scores`` float32 (N,)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    @staticmethod
    def from_arrays(boxes: np.ndarray | None, scores: np.ndarray | None) -> Detections:
        """Build from raw detector output (None -> no face), sorted by decreasing score."""
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)  # (N,4)
        s = np.asarray(scores, dtype=np.float32).reshape(-1)  # (N,)
        order = np.argsort(-s, kind="stable")
        return Detections(b[order], s[order])


def box_size_px(boxes: np.ndarray) -> np.ndarray:
    """Face size of boxes (...,4) = the longer side in pixels, (...,). Used for ``min_face_px``."""
    return np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])


class FaceDetector(Protocol):
    """Anything with ``detect(frames) -> list[Detections]`` (one entry per frame)."""

    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]: ...


def _as_frames(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate RGB uint8 frames; returns a list of (H,W,3) arrays."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = frames[None]  # (H,W,3)->(1,H,W,3)
    out = [np.ascontiguousarray(f) for f in frames]
    for f in out:
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise InputError(f"face detection expects RGB uint8 frames (H,W,3), got {f.dtype} {f.shape}")
    return out


def face_recognition_model_path(name: str) -> Path:
    """Path of a model file shipped by face-recognition-models (e.g. 'shape_predictor_68_face_landmarks.dat').

    Located from the package's files without importing it (its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ships).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise missing_package("face-recognition-models", "face", f"dlib model '{name}'")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise MissingWeightsError(f"dlib model file missing: {path} (reinstall face-recognition-models)")
    return path


def import_dlib():  # noqa: ANN201 - module object
    try:
        import dlib
    except ImportError as e:
        raise missing_package("dlib-bin", "face", "dlib face detection / landmarks") from e
    return dlib


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) from facenet-pytorch; weights ship inside the package.

    ``min_size_px`` is MTCNN's smallest searched face (image-pyramid floor; smaller = slower);
    keep it below the tracking ``min_face_px`` so tiny faces are still seen and reported.
    ``score_threshold`` drops weak final-stage detections (probability in [0, 1]).
    Frames of one call must share a size to be batched; mixed sizes are run one by one.
    """

    def __init__(
        self,
        device: str = "cpu",
        min_size_px: float = 20.0,
        score_threshold: float = 0.9,
        batch_size: int = 16,
    ) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise MissingDependencyError(
                "MTCNN face detection needs the package 'facenet-pytorch' "
                "(its metadata pins an old torch): pip install --no-deps facenet-pytorch==2.6.0"
            ) from e
        self.model = MTCNN(min_face_size=int(min_size_px), keep_all=True, device=device)
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)

    def _run(self, batch: list[np.ndarray]) -> list[Detections]:
        if len({f.shape for f in batch}) == 1:
            boxes, probs = self.model.detect(np.stack(batch))  # (B,H,W,3) -> B x (N,4), B x (N,)
        else:
            res = [self.model.detect(f) for f in batch]
            boxes, probs = [r[0] for r in res], [r[1] for r in res]
        out = []
        for b, p in zip(boxes, probs, strict=True):
            d = Detections.from_arrays(None if b is None else np.stack(list(b)), p)
            keep = d.scores >= self.score_threshold
            out.append(Detections(d.boxes[keep], d.scores[keep]))
        return out

    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        fs = _as_frames(frames)
        out: list[Detections] = []
        for i in range(0, len(fs), self.batch_size):
            out.extend(self._run(fs[i : i + self.batch_size]))
        return out


class DlibDetector:
    """dlib frontal-face detector: ``kind="hog"`` (HOG + linear SVM) or ``"cnn"`` (MMOD CNN).

    ``upsample`` enlarges the image that many times before detecting (finds smaller faces, slower).
    ``score_threshold`` is dlib's detection confidence threshold (SVM margin for HOG, 0 = dlib default).
    The CNN model file comes from face-recognition-models (``mmod_human_face_detector.dat``).
    """

    def __init__(self, kind: Literal["hog", "cnn"] = "hog", upsample: int = 0, score_threshold: float = 0.0):
        dlib = import_dlib()
        self.kind = kind
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        if kind == "hog":
            self._det = dlib.get_frontal_face_detector()
        elif kind == "cnn":
            path = face_recognition_model_path("mmod_human_face_detector.dat")
            self._det = dlib.cnn_face_detection_model_v1(str(path))
        else:
            raise InputError(f"unknown dlib detector kind '{kind}' (choose 'hog' or 'cnn')")

    def _one(self, frame: np.ndarray) -> Detections:
        if self.kind == "hog":
            rects, scores, _ = self._det.run(frame, self.upsample, self.score_threshold)
        else:
            found = self._det(frame, self.upsample)
            rects = [m.rect for m in found]
            scores = [m.confidence for m in found]
        # dlib rectangles are inclusive pixel indices: right/bottom + 1 gives continuous corners
        boxes = np.array(
            [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], dtype=np.float32
        ).reshape(-1, 4)  # (N,4)
        d = Detections.from_arrays(boxes, np.asarray(scores, np.float32))
        keep = d.scores >= self.score_threshold
        return Detections(d.boxes[keep], d.scores[keep])

    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        return [self._one(f) for f in _as_frames(frames)]


# No a2v extra installs MediaPipe: its legacy solutions API is in mediapipe <= 0.10.21 only, whose
# Python 3.11 wheels need numpy<2 and protobuf<5; mediapipe >= 0.10.30 dropped the API.
MEDIAPIPE_HINT = ("MediaPipe face detection needs mediapipe's legacy 'solutions' API (mediapipe<=0.10.21, which "
                  "needs numpy<2 and protobuf<5 and so clashes with a2v's numpy 2; newer mediapipe lacks the API; "
                  "no a2v extra installs it): use detector mtcnn or dlib")


class MediaPipeDetector:
    """MediaPipe face detection (BlazeFace, legacy ``solutions`` API); optional package ``mediapipe``.

    ``model_selection`` 0 = short range (faces within ~2 m), 1 = full range.
    """

    def __init__(self, model_selection: int = 1, score_threshold: float = 0.5) -> None:
        try:
            import mediapipe as mp
        except ImportError as e:
            raise MissingDependencyError(MEDIAPIPE_HINT) from e
        if not hasattr(mp, "solutions"):
            raise MissingDependencyError(f"mediapipe {getattr(mp, '__version__', '?')} has no 'solutions' API: "
                                         + MEDIAPIPE_HINT)
        self._det = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=score_threshold
        )

    def _one(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        res = self._det.process(frame)
        boxes, scores = [], []
        for det in res.detections or []:
            bb = det.location_data.relative_bounding_box  # relative to the frame size
            boxes.append([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h])
            scores.append(det.score[0])
        return Detections.from_arrays(np.asarray(boxes, np.float32), np.asarray(scores, np.float32))

    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        return [self._one(f) for f in _as_frames(frames)]


def make_detector(
    name: DetectorName = "mtcnn", device: str = "cpu", min_size_px: float = 20.0
) -> FaceDetector:
    """Build a detector by name (a plain ``if``, for configs); ``device`` is used by MTCNN only."""
    if name == "mtcnn":
        return MTCNNDetector(device=device, min_size_px=min_size_px)
    if name == "dlib_hog":
        return DlibDetector("hog", upsample=1 if min_size_px < 80 else 0)
    if name == "dlib_cnn":
        return DlibDetector("cnn", upsample=1 if min_size_px < 80 else 0)
    if name == "mediapipe":
        return MediaPipeDetector()
    raise InputError(f"unknown face detector '{name}' (choose mtcnn, dlib_hog, dlib_cnn, mediapipe)")
