"""Generated inputs for the a2v.data tests: short talking-face clips, a fake extractor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from a2v.data import DropItem

FPS = 25
SR = 16000
HW = (176, 224)  # frame (H, W) px: small, so MTCNN stays quick on CPU
FACE_PX = 112  # side of the pasted astronaut head


def astronaut_head(size: int = FACE_PX) -> np.ndarray:
    """scikit-image's astronaut (public domain), cropped to the head: uint8 (size,size,3) RGB."""
    import cv2
    from skimage import data

    head = data.astronaut()[20:260, 130:370]  # (240,240,3)
    return cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)  # (240,240,3)->(s,s,3)


def face_frames(n: int, faces: int = 1, hw: tuple[int, int] = HW) -> list[np.ndarray]:
    """n frames, uint8 (H,W,3): ``faces`` heads on a gray background, moving 1 px per frame (0: none)."""
    head = astronaut_head()
    yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]]
    bg = np.stack([60 + 40 * xx / hw[1], 80 + 30 * yy / hw[0], np.full(hw, 90.0)], -1).astype(np.uint8)
    out = []
    for i in range(n):
        f = bg.copy()
        if faces == 1:
            x0 = (hw[1] - FACE_PX) // 2 - 10 + i
            f[30 : 30 + FACE_PX, x0 : x0 + FACE_PX] = head
        elif faces == 2:  # two heads side by side (give a frame wide enough, e.g. (176, 320))
            f[30 : 30 + FACE_PX, 8 + i % 3 : 8 + i % 3 + FACE_PX] = head
            f[30 : 30 + FACE_PX, hw[1] - FACE_PX - 8 : hw[1] - 8] = head
        out.append(f)
    return out


def speech(n_frames: int) -> np.ndarray:
    """float32 (S,) eSpeak NG speech cut/padded to n_frames / 25 s at 16 kHz."""
    from a2v.audio import synthesize_speech

    wav = synthesize_speech("set white with p two soon please", sr=SR)  # (S0,)
    n = n_frames * SR // FPS
    return np.pad(wav, (0, max(0, n - len(wav))))[:n]  # (S0,)->(S,)


def make_clip(path: Path, n_frames: int = 25, faces: int = 1, audio: bool = True) -> Path:
    """Write an H.264 mp4 of ``face_frames`` at 25 fps with speech (or no audio track)."""
    from a2v.video import write_video

    hw = (HW[0], 320) if faces == 2 else HW
    frames = face_frames(n_frames, faces, hw)
    write_video(path, frames, FPS, audio=speech(n_frames) if audio else None, preset="ultrafast")
    return path


class FakeExtractor:
    """Model-free extractor: members shaped like the real ones; records calls; drops files named
    'bad*'; raises KeyboardInterrupt on the ``kill_at``-th call (a killed run)."""

    def __init__(self, n_frames: int = 5, kill_at: int | None = None) -> None:
        self.n_frames, self.kill_at = n_frames, kill_at
        self.calls: list[str] = []

    def __call__(self, source: Path, item_id: str, work_dir: Path) -> dict[str, Any]:
        self.calls.append(item_id)
        if self.kill_at is not None and len(self.calls) == self.kill_at:
            raise KeyboardInterrupt
        if source.name.startswith("bad"):
            raise DropItem("no_face", "frame 0: no face detected")
        f = self.n_frames
        crop = work_dir / "crop.mp4"
        crop.write_bytes(source.read_bytes())
        return {
            "audio.npy": np.full(f * SR // FPS, len(self.calls), np.float32),  # (S,)
            "landmarks.npy": np.zeros((f, 68, 2), np.float32),
            "crop.mp4": crop,
            "meta.json": {"fps": FPS, "n_frames": f, "duration_s": f / FPS},
        }


def touch_videos(folder: Path, names: list[str]) -> list[Path]:
    """Files named like videos (contents = their name) for FakeExtractor runs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in names:
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(n.encode())
        paths.append(p)
    return paths


class BoxDetector:
    """Model-free detector: the same boxes (N,4) on every frame; records the frame sizes it saw."""

    def __init__(self, boxes: list[list[float]]) -> None:
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.sizes: list[tuple[int, int]] = []

    def detect(self, frames: list[np.ndarray]) -> list[Any]:
        from a2v.face.detect import Detections

        self.sizes += [f.shape[:2] for f in frames]
        return [Detections(self.boxes.copy(), np.ones(len(self.boxes), np.float32)) for _ in frames]


def grid_landmarker(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Model-free landmarker: 68 points on a grid inside ``box`` -> float32 (68,2) frame px."""
    t = np.linspace(0.1, 0.9, 68, dtype=np.float32)
    x0, y0, x1, y1 = box
    return np.stack([x0 + t * (x1 - x0), y0 + t[::-1] * (y1 - y0)], 1)  # (68,2)


def make_rotated_vfr_clip(path: Path, n_frames: int = 25) -> Path:
    """A phone-like clip: frames stored landscape (176x224) with a 90 degree display rotation and
    jittered timestamps (variable frame rate, ~25 fps), plus speech. Upright it is 224x176."""
    from fractions import Fraction

    import av

    from a2v.video import mux_audio

    raw = path.with_name(path.stem + "_raw.mp4")
    with av.open(str(raw), "w") as c:
        s = c.add_stream("libx264", rate=1000)
        s.width, s.height, s.pix_fmt = HW[1], HW[0], "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"crf": "18", "bf": "0"}
        s.set_display_rotation(90)
        for i, f in enumerate(face_frames(n_frames)):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base, vf.duration = 40 * i + (9 if i % 2 else 0), Fraction(1, 1000), 40
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    mux_audio(raw, speech(n_frames), path, audio_sr=SR)
    raw.unlink()
    return path
