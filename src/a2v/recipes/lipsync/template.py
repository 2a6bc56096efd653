"""Lip-sync stage 2 template workflow (Zheng et al. 2020, arXiv:2002.08700, §3.2).

A template clip of the person gives everything but the mouth: head pose, eyes, hair, clothes,
background. For new speech, each output frame takes one template frame (the clip played forward
and backward, "ping-pong", when the speech is longer), replaces its mouth (and jaw) landmarks by
predicted ones, draws the facial map (landmark polylines + the template's Canny edges, mouth
edges masked, :func:`a2v.face.facial_map`) on the face crop, renders the crop with the
pix2pixHD renderer and pastes it back into the full frame with a feathered edge.

Coordinates: boxes float32 (F,4) x0,y0,x1,y1 and landmarks float32 (F,68,2) in continuous
template-frame px, NaN rows where there is no face (those frames pass through unchanged).
Frames: uint8 (H,W,3) RGB at ``fps`` (25 in the paper). Crops: uint8 (R,R,3), R = renderer
``resolution_px``; facial maps uint8 (R,R,C), C = 3 (``"rgb"``) or 10 (``"groups"``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from a2v.config import from_dict, to_dict
from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.face.crop import CropTransform
from a2v.face.facial_map import facial_map
from a2v.io import atomic_path, write_json_atomic

__all__ = [
    "IMAGE_EXTS", "TemplateConfig", "Template", "FrameStore", "prepare_template", "open_frames",
    "pingpong_indices", "face_inputs", "TemplatePairs", "map_channels", "lower_face_boxes",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
TEMPLATE_FORMAT = "a2v.lipsync_template/1"


@dataclass(frozen=True)
class TemplateConfig:
    """How a template is tracked, cropped, drawn and pasted back (our settings; the paper gives none).

    detector / detect_every_frames / min_face_px: face track (:func:`a2v.face.track_speaker`).
    smooth_window_frames: Savitzky-Golay window of the template landmarks (1 = off).
    region: what the renderer synthesises: ``"face"`` the whole face crop (the paper) or
    ``"mouth"`` the lower face only (nose tip to chin, :func:`lower_face_boxes`; ours, for a CPU).
    margin_frac: crop margin around the face box or the lower-face box (:func:`a2v.face.square_box`).
    feather_frac: paste-back blend ramp as a fraction of the crop side.
    map_layout / line_px / mask_outside_face / canny_low / canny_high: facial map drawing.
    max_memory_mb: template frames kept in memory up to this size, else in a temporary file.
    """

    fps: float = 25.0
    detector: Literal["mtcnn", "dlib_hog", "dlib_cnn", "mediapipe"] = "dlib_hog"
    detect_every_frames: int = 5
    min_face_px: float = 64.0
    smooth_window_frames: int = 5
    region: Literal["face", "mouth"] = "face"
    margin_frac: float = 0.25
    feather_frac: float = 0.08
    map_layout: Literal["rgb", "groups"] = "rgb"
    line_px: int = 1
    mask_outside_face: bool = False
    canny_low: float = 50.0
    canny_high: float = 150.0
    max_memory_mb: float = 1024.0

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.detect_every_frames < 1 or self.line_px < 1 or self.smooth_window_frames < 1:
            raise ConfigError("template: fps, detect_every_frames, line_px and smooth_window_frames must be positive")
        if not 0 <= self.feather_frac < 0.5 or self.margin_frac < 0:
            raise ConfigError(f"template: feather_frac must be in [0, 0.5) and margin_frac >= 0, got "
                              f"{self.feather_frac}, {self.margin_frac}")
        if self.map_layout not in ("rgb", "groups"):
            raise ConfigError(f"template: map_layout must be 'rgb' or 'groups', got {self.map_layout!r}")
        if self.region not in ("face", "mouth"):
            raise ConfigError(f"template: region must be 'face' or 'mouth', got {self.region!r}")


# 68-point layout: jaw 4..12 (below the cheeks to the chin) and the nose tip 33 bound the lower face
LOWER_FACE_X = tuple(range(4, 13))
NOSE_TIP, CHIN = 33, 8


def lower_face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """Lower-face boxes from 68 landmarks: float (F,68,2) px -> float32 (F,4) x0,y0,x1,y1 px (NaN rows stay NaN).

    x spans jaw points 4..12 (the mouth and the jaw around it), y runs from the nose tip (33) to
    the chin (8). Its square (:func:`a2v.face.square_box`) is about 0.7 face widths wide and
    centred between nose tip and chin, so it stops below the eyes.
    """
    lm = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)  # (F,68,2)
    x = lm[:, LOWER_FACE_X, 0]  # (F,9)
    return np.stack([x.min(1), lm[:, NOSE_TIP, 1], x.max(1), lm[:, CHIN, 1]], 1).astype(np.float32)  # (F,4)


def map_channels(layout: str) -> int:
    """Channels of a facial map layout: rgb -> 3, groups -> 10."""
    return 3 if layout == "rgb" else 10


@dataclass
class Template:
    """A tracked template: ``source`` video or image path, ``fps``, ``frame_hw`` (H,W),
    ``boxes`` float32 (F,4) and ``landmarks`` float32 (F,68,2) px (NaN rows = no face),
    ``speaker``: the fitted person's id in the mouth statistics (None = use the template's own)."""

    source: str
    fps: float
    frame_hw: tuple[int, int]
    boxes: np.ndarray
    landmarks: np.ndarray
    speaker: str | None = None
    cfg: TemplateConfig = TemplateConfig()

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def has_face(self) -> np.ndarray:
        """bool (F,): frames with a box and landmarks."""
        return ~np.isnan(self.boxes[:, 0]) & ~np.isnan(self.landmarks[:, 0, 0])

    def crop_boxes(self) -> np.ndarray:
        """float32 (F,4) boxes the renderer crops around: the face boxes (``region="face"``) or the
        lower-face boxes of the landmarks (``region="mouth"``); NaN rows where there is no face."""
        if self.cfg.region == "mouth":
            b = lower_face_boxes(self.landmarks)  # (F,68,2)->(F,4)
            b[~self.has_face] = np.nan
            return b
        return self.boxes

    @property
    def is_image(self) -> bool:
        return Path(self.source).suffix.lower() in IMAGE_EXTS

    def save(self, folder: str | Path, copy_source: bool = True) -> Path:
        """Write ``template.json`` + ``template.safetensors`` (+ a copy of the source as ``source<ext>``)."""
        from safetensors.numpy import save_file

        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        src = Path(self.source)
        name = src.name
        if copy_source:
            name = "source" + src.suffix.lower()
            if src.resolve() != (d / name).resolve():
                with atomic_path(d / name) as tmp:
                    shutil.copyfile(src, tmp)
        with atomic_path(d / "template.safetensors") as tmp:
            save_file({"boxes": np.ascontiguousarray(self.boxes, np.float32),
                       "landmarks": np.ascontiguousarray(self.landmarks, np.float32)}, str(tmp))
        write_json_atomic(d / "template.json", {
            "format": TEMPLATE_FORMAT, "source": name if copy_source else str(src.resolve()), "fps": self.fps,
            "frame_hw": list(self.frame_hw), "n_frames": len(self), "n_without_face": int((~self.has_face).sum()),
            "speaker": self.speaker, "config": to_dict(self.cfg)})
        return d

    @staticmethod
    def load(folder: str | Path) -> Template:
        from safetensors.numpy import load_file

        d = Path(folder)
        meta_path, arrays = d / "template.json", d / "template.safetensors"
        if not meta_path.is_file() or not arrays.is_file():
            raise MissingWeightsError(f"template folder {d} lacks template.json or template.safetensors "
                                      "(re-run 'a2v lipsync fit')")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != TEMPLATE_FORMAT:
            raise InputError(f"{meta_path} is not a lip-sync template (format {meta.get('format')!r})")
        a = load_file(str(arrays))
        src = Path(meta["source"])
        src = src if src.is_absolute() else d / src
        return Template(str(src), float(meta["fps"]), tuple(meta["frame_hw"]), a["boxes"], a["landmarks"],
                        meta.get("speaker"), from_dict(TemplateConfig, meta["config"], str(meta_path)))


class FrameStore:
    """Random access to a clip's frames uint8 (H,W,3): in memory while the clip fits ``max_memory_mb``,
    else in an anonymous temporary file read back one frame at a time (constant memory).

    A ping-pong over a long template needs frames in reverse order, which a stream decoder
    cannot give; decoding once into this store keeps both directions cheap.
    """

    def __init__(self, frames: Iterable[np.ndarray], max_memory_mb: float = 1024.0) -> None:
        self._mem: list[np.ndarray] = []
        self._file = None
        self.shape: tuple[int, int, int] | None = None
        self._n = 0
        limit = max_memory_mb * 2**20
        for f in frames:
            if self.shape is None:
                self.shape = tuple(f.shape)
            elif tuple(f.shape) != self.shape:
                raise InputError(f"template frame {self._n} is {f.shape}, the first was {self.shape}")
            if self._file is None and (self._n + 1) * f.nbytes > limit:
                self._file = tempfile.TemporaryFile(prefix="a2v-template-")  # deleted on close
                for m in self._mem:
                    self._file.write(np.ascontiguousarray(m).tobytes())
                self._mem = []
            if self._file is not None:
                self._file.write(np.ascontiguousarray(f, np.uint8).tobytes())
            else:
                self._mem.append(np.ascontiguousarray(f, np.uint8))
            self._n += 1
        if self._n == 0:
            raise InputError("the template has no frames (empty or unreadable video)")

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self._n:
            raise IndexError(f"frame {i} of {self._n}")
        if self._file is None:
            return self._mem[i]
        size = int(np.prod(self.shape))
        self._file.seek(i * size)
        return np.frombuffer(self._file.read(size), np.uint8).reshape(self.shape)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _iter_source(source: str | Path, fps: float, progress: bool = False) -> Iterator[np.ndarray]:
    """Frames of a video (resampled to ``fps``) or the single frame of an image."""
    p = Path(source)
    if p.suffix.lower() in IMAGE_EXTS:
        from a2v.video import load_image

        yield load_image(p)
        return
    from a2v.video import read_frames

    yield from read_frames(p, fps=fps, progress=progress)


def open_frames(template: Template, progress: bool = False) -> FrameStore:
    """Decode the template's frames (at its fps) into a :class:`FrameStore`; length-checked against the track."""
    store = FrameStore(_iter_source(template.source, template.fps, progress), template.cfg.max_memory_mb)
    if len(store) != len(template):
        store.close()
        raise InputError(f"{template.source} gives {len(store)} frames at {template.fps:g} fps but the template "
                         f"track has {len(template)}: the file changed since it was tracked")
    return store


def prepare_template(
    source: str | Path, cfg: TemplateConfig = TemplateConfig(), device: str = "cpu", progress: bool = False
) -> Template:
    """Track the face and its 68 landmarks in a template video or photo (two streaming passes).

    The speaking face is the largest (:func:`a2v.face.track_speaker`); frames where it is missing
    stay NaN and pass through at generation. Landmarks are smoothed in time (Savitzky-Golay).
    """
    from a2v.face import DlibLandmarker, TrackConfig, make_detector, smooth_landmarks, track_speaker

    p = Path(source)
    if not p.is_file():
        raise InputError(f"template {p} not found (give a video or photo of the person)")
    detector = make_detector(cfg.detector, device=device, min_size_px=cfg.min_face_px)
    tcfg = TrackConfig(detect_every_frames=cfg.detect_every_frames, min_face_px=cfg.min_face_px)
    track = track_speaker(_iter_source(p, cfg.fps, progress), detector, tcfg, progress=False)
    if track.n_missing == track.n_frames:
        raise InputError(f"no face of at least {cfg.min_face_px:g} px found in {p}: give a clip showing the "
                         "person's face or lower template.min_face_px")
    landmarker = DlibLandmarker()
    lm = np.full((track.n_frames, 68, 2), np.nan, np.float32)  # (F,68,2)
    for i, frame in enumerate(_iter_source(p, cfg.fps)):
        if i < track.n_frames and track.has_face[i]:
            lm[i] = landmarker(frame, track.boxes[i])
    if cfg.smooth_window_frames > 1:
        lm = smooth_landmarks(lm, cfg.smooth_window_frames)
    return Template(str(p), cfg.fps, track.frame_hw, track.boxes.astype(np.float32), lm, None, cfg)


def pingpong_indices(n_out: int, n_template: int) -> np.ndarray:
    """Template frame of each output frame: 0..T-1, T-2..1, 0..T-1, ... -> int64 (n_out,)."""
    if n_template < 1:
        raise InputError("the template has no frames")
    if n_template == 1:
        return np.zeros(n_out, np.int64)
    period = 2 * n_template - 2
    k = np.arange(n_out) % period  # (F,)
    return np.where(k < n_template, k, period - k).astype(np.int64)


def face_inputs(
    frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray, cfg: TemplateConfig, resolution_px: int
) -> tuple[CropTransform, np.ndarray, np.ndarray]:
    """One frame's renderer inputs: (crop transform, crop uint8 (R,R,3), facial map uint8 (R,R,C)).

    frame uint8 (H,W,3); box (4,) and landmarks (68,2) in frame px. The map draws ``landmarks``
    (e.g. the template's with a predicted mouth) over the Canny edges of the template crop.
    """
    t = CropTransform.from_box(box, frame.shape[:2], resolution_px, cfg.margin_frac)
    crop = t.apply(frame)  # (H,W,3)->(R,R,3)
    lm_crop = t.points_to_crop(np.asarray(landmarks, np.float64))  # (68,2) frame px -> crop px
    fmap = facial_map(lm_crop, crop, layout=cfg.map_layout, thickness_px=cfg.line_px,
                      mask_outside_face=cfg.mask_outside_face, canny_low=cfg.canny_low,
                      canny_high=cfg.canny_high)  # (R,R,C)
    return t, crop, fmap


class TemplatePairs(torch.utils.data.Dataset):
    """Renderer training pairs from the template's own frames, built on the fly (constant memory).

    Uses the frames with a face (among ``frame_ids``, default all), at most ``max_pairs`` of them
    evenly spread. Item: {"map": uint8 (C,R,R), "frame": uint8 (3,R,R)} (the crop the map was drawn
    on: the face, or the lower face when ``template.cfg.region == "mouth"``).
    """

    def __init__(self, template: Template, frames: FrameStore, resolution_px: int, max_pairs: int = 0,
                 frame_ids: np.ndarray | None = None) -> None:
        face = template.has_face
        if frame_ids is not None:
            face = face & np.isin(np.arange(len(template)), frame_ids)
        idx = np.flatnonzero(face)
        if len(idx) == 0:
            raise InputError(f"{template.source}: no frame with a face to train the renderer on")
        if 0 < max_pairs < len(idx):
            idx = idx[np.linspace(0, len(idx) - 1, max_pairs).round().astype(int)]
        self.template, self.frames, self.resolution_px, self.index = template, frames, resolution_px, idx
        self.boxes = template.crop_boxes()  # (F,4)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.index[k])
        t = self.template
        _, crop, fmap = face_inputs(self.frames[i], self.boxes[i], t.landmarks[i], t.cfg, self.resolution_px)
        return {"map": torch.from_numpy(np.ascontiguousarray(fmap.transpose(2, 0, 1))),  # (R,R,C)->(C,R,R)
                "frame": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))}  # (R,R,3)->(3,R,R)
