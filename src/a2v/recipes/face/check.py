"""Is a trained face decoder usable? Sample a few faces and count those dlib's detector finds.

Run at the end of ``a2v face train --stage decoder`` (``sample.check_faces`` samples, 0 = off): a
decoder whose samples hold no detectable face is reported as such, never as a success. The same
count is given by ``a2v face evaluate`` on the final (super-resolved) pictures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.recipes.face.config import FaceConfig

DETECT_MIN_SIDE_PX = 160  # as a2v face evaluate: dlib's HOG detector misses faces under ~40 px
USABLE_FRACTION = 0.5  # fewer found faces than this share of the samples: warn


def detect_enlarged(images: np.ndarray, upsample: int = 1, min_side_px: int = DETECT_MIN_SIDE_PX):  # noqa: ANN201
    """Per uint8 (H,W,3) RGB picture of ``images``: (picture enlarged so its short side is at least
    ``min_side_px``, bicubic; the enlargement factor k >= 1; dlib HOG face boxes (B,4) in its pixels)."""
    import cv2

    from a2v.face import DlibDetector

    det = DlibDetector("hog", upsample=upsample)
    for im in images:
        k = max(1.0, min_side_px / min(im.shape[:2]))
        big = cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) if k > 1 else im
        yield big, k, det.detect(np.ascontiguousarray(big))[0].boxes


def faces_found(images: np.ndarray, upsample: int = 1, min_side_px: int = DETECT_MIN_SIDE_PX) -> np.ndarray:
    """uint8 (N,H,W,3) RGB -> bool (N,): dlib's HOG detector finds a face (pictures enlarged to
    ``min_side_px`` first, bicubic)."""
    return np.array([len(boxes) > 0 for _, _, boxes in detect_enlarged(images, upsample, min_side_px)], bool)


def distinct_rows(emb: torch.Tensor, n: int) -> torch.Tensor:
    """Up to ``n`` distinct rows of (N,D), in order of first appearance, repeated cyclically to ``n`` rows."""
    uniq: list[torch.Tensor] = []
    for row in emb:
        if not any(torch.allclose(row, u, atol=1e-6) for u in uniq):
            uniq.append(row)
        if len(uniq) == n:
            break
    idx = torch.arange(n) % len(uniq)
    return torch.stack(uniq)[idx]  # (n,D)


@torch.no_grad()
def check_decoder(decoder: torch.nn.Module, cfg: FaceConfig, embeddings: torch.Tensor, num: int,
                  seed: int = 0) -> dict[str, Any]:
    """Sample ``num`` faces of the decoder size (no super-resolution) with ``cfg.sample``'s sampler and
    guidance, one per distinct training embedding (cycled), and count the faces found.

    Returns {"faces_found", "of", "sampler", "guidance", "seconds"} and the pictures uint8 (num,S,S,3)
    under "images".
    """
    import time

    from a2v.diffusion.ddpm import ddpm_sample, make_scheduler
    from a2v.recipes.face.data import to_uint8

    t0 = time.perf_counter()
    d, s = cfg.decoder, cfg.sample
    dev = next(decoder.parameters()).device
    was_training = decoder.training
    decoder.eval()
    cond = distinct_rows(embeddings.float().cpu(), num).to(dev)  # (num,D)
    sched = make_scheduler(s.sampler, d.num_train_timesteps, d.beta_schedule, clip_sample=True)
    steps = None if s.sampler == "ancestral" else s.num_steps
    x = ddpm_sample(decoder, (num, 3, d.image_size_px, d.image_size_px), sched, cond=cond, num_inference_steps=steps,
                    w=s.guidance_w, generator=torch.Generator().manual_seed(seed), device=dev,
                    progress=False)  # (num,3,S,S)
    decoder.train(was_training)
    images = to_uint8(x)  # (num,S,S,3)
    found = faces_found(images)
    return {"faces_found": int(found.sum()), "of": num, "sampler": s.sampler, "guidance": s.guidance_w,
            "seconds": round(time.perf_counter() - t0, 2), "images": images}


def report_check(res: dict[str, Any], what: str, out_dir: str | Path | None = None) -> str:
    """One line "faces found k/N ..." (a warning when fewer than half); saved with the pictures as
    ``out_dir/face_check.{json,png}`` when given. Returns the line."""
    from a2v.io import write_json_atomic

    k, n = res["faces_found"], res["of"]
    line = f"faces found {k}/{n} in {what} (dlib HOG on pictures enlarged to {DETECT_MIN_SIDE_PX} px)"
    if k < USABLE_FRACTION * n:
        line = (f"WARNING: {line}: the model is not usable yet (train longer, e.g. --set "
                "train_decoder.max_steps=..., or check the training pictures)")
    if out_dir is not None:
        from a2v.video import write_png

        out = Path(out_dir)
        write_json_atomic(out / "face_check.json", {k2: v for k2, v in res.items() if k2 != "images"})
        if "images" in res:
            write_png(out / "face_check.png", np.concatenate(list(res["images"]), axis=1))  # (N,S,S,3)->(S,N*S,3)
    return line
