"""Still images (PIL): load upright RGB, write PNG frames and folders, write animated GIF.

All outputs are atomic: a failed write leaves no partial file (or, for a folder of
frames, none of the frames written by that call).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from a2v.errors import InputError, require_file
from a2v.io import atomic_path


def load_image(path: str | Path) -> np.ndarray:
    """Load an image file as uint8 (H,W,3) RGB in [0, 255], upright.

    The EXIF orientation is applied (phone photos come out as displayed); gray, palette
    and CMYK images are converted to RGB and an alpha channel is dropped. Raises
    InputError for a missing, empty, corrupt or non-image file.
    """
    p = require_file(path, "image")
    try:
        with Image.open(p) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
            rgb = upright.convert("RGB")
    except UnidentifiedImageError:
        raise InputError(f"not an image file (or an unsupported format): {p}") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL reports truncated/corrupt data this way
        raise InputError(f"corrupt image {p}: {e}") from None
    return np.asarray(rgb, dtype=np.uint8)  # (H,W,3)


def write_png(path: str | Path, frame: np.ndarray) -> Path:
    """Write one frame to a PNG (atomic): uint8 (H,W,3) RGB, (H,W,4) RGBA or (H,W) gray."""
    img = _to_pil(frame)
    out = Path(path)
    with atomic_path(out, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return out


def write_png_sequence(
    folder: str | Path, frames: Iterable[np.ndarray], pattern: str = "{:06d}.png", start: int = 0
) -> int:
    """Write frames (uint8 (H,W,3) each, consumed lazily) as ``folder/000000.png``, ...; returns the count.

    ``pattern`` is formatted with the frame number, counted from ``start``. Each file is
    written atomically; if any frame fails, the files written by this call are removed.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for i, frame in enumerate(frames, start=start):
            written.append(write_png(out / pattern.format(i), frame))
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        raise
    return len(written)


def write_gif(path: str | Path, frames: Iterable[np.ndarray], fps: float, loop: int = 0) -> Path:
    """Write uint8 (H,W,3) RGB frames to an animated GIF (atomic), looping ``loop`` times (0 = forever).

    Each frame gets its own 256-colour palette (PIL median cut). GIF stores frame times
    in 1/100 s, so rates that do not divide 100 (e.g. 30 fps) play slightly off. The
    GIF encoder keeps every palettized frame (1 byte/pixel) until it writes the file:
    GIF is for short previews; write long videos with :func:`a2v.video.write_video`.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    images = (_to_pil(f) for f in frames)
    first = next(images, None)
    if first is None:
        raise InputError(f"no frames were given for {path}; nothing written")
    out = Path(path)
    with atomic_path(out, suffix=".gif") as tmp:
        first.save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=_same_size(images, first.size),
            duration=1000.0 / fps,
            loop=loop,
            optimize=False,
        )
    return out


def _same_size(images: Iterator[Image.Image], size: tuple[int, int]) -> Iterator[Image.Image]:
    for i, im in enumerate(images, start=1):
        if im.size != size:
            raise ValueError(f"frame {i} is {im.size[::-1]}, the first was {size[::-1]} (H,W)")
        yield im


def _to_pil(frame: np.ndarray) -> Image.Image:
    """uint8 (H,W,3) / (H,W,4) / (H,W) array -> PIL image (RGB / RGBA / L)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 in [0, 255], got {a.dtype}")
    if a.ndim == 2:
        return Image.fromarray(a)  # L
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(a))  # RGB or RGBA
    raise ValueError(f"frame must be (H,W,3), (H,W,4) or (H,W), got {a.shape}")
