"""Object-detector boxes for BriVL's image tower: ``a2v image detect-boxes`` writes ``<data>/boxes/<id>.npy``.

BriVL (Huo et al. 2021) pooled up to 36 boxes of a bottom-up-attention Faster R-CNN (Anderson et al. 2018,
ResNet-101 trained on Visual Genome) plus the whole image. That detector is Caffe/Detectron code with its own
weights; any detector's output in the box-file format works (see :meth:`PairDataset.boxes`). This module
runs torchvision's COCO Faster R-CNN (ResNet-50 FPN v2) from a weights file the user gives: a well-kept
detector that is *not* BriVL's (another training set and class list), so its boxes are a stand-in, and the
files record which detector made them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.io import write_bytes_atomic, write_json_atomic


def build_detector(weights: str | os.PathLike, max_boxes: int = 36, score_min: float = 0.2,
                   min_size_px: int = 600) -> torch.nn.Module:
    """torchvision ``fasterrcnn_resnet50_fpn_v2`` with the state dict at ``weights`` (read weights-only; e.g.
    torchvision's fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth), keeping up to ``max_boxes`` detections per
    picture above ``score_min``; pictures are resized to ``min_size_px`` on their short side. Eval mode, CPU."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    from a2v.recipes.image.ckpt import load_strict, read_state_dict

    sd = read_state_dict(weights, "detector weights", "")
    model = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, box_detections_per_img=int(max_boxes),
                                       box_score_thresh=float(score_min), min_size=int(min_size_px),
                                       max_size=int(min_size_px) * 2)
    load_strict(model, sd, f"{weights} is not a torchvision fasterrcnn_resnet50_fpn_v2 state dict")
    return model.eval()


@torch.no_grad()
def detect_boxes(data_dir: str | os.PathLike, detector: torch.nn.Module, overwrite: bool = False,
                 progress: bool = True, detector_name: str = "") -> dict[str, Any]:
    """Detect boxes in every prepared picture of ``data_dir`` and write ``boxes/<id>.npy``: float32 (N,5)
    x1,y1,x2,y2 (pixels of the prepared square picture), score; best first, N <= the detector's limit.
    Existing box files are kept unless ``overwrite``. Writes ``boxes/detector.json`` and returns counts."""
    from tqdm.auto import tqdm

    from a2v.recipes.image.data import PairDataset

    pairs = PairDataset(data_dir, "all", 1.0, train=False)
    out = Path(data_dir) / "boxes"
    done = kept = empty = total = 0
    for i in tqdm(range(len(pairs)), desc="detect boxes", unit="picture", disable=not progress):
        f = out / f"{pairs.rows[i]['id']}.npy"
        if f.is_file() and not overwrite:
            kept += 1
            continue
        _, image = pairs.load(i)  # uint8 (P,P,3)
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0  # (P,P,3)->(3,P,P) in [0,1]
        det = detector([x])[0]
        order = torch.argsort(det["scores"], descending=True)  # (N,)
        rows = torch.cat([det["boxes"][order], det["scores"][order, None]], 1).numpy().astype(np.float32)  # (N,5)
        buf = io.BytesIO()
        np.save(buf, rows)
        write_bytes_atomic(f, buf.getvalue())
        done, total, empty = done + 1, total + len(rows), empty + int(len(rows) == 0)
    report = {"pictures": len(pairs), "detected": done, "kept_existing": kept, "boxes": total,
              "pictures_without_boxes": empty, "detector": detector_name or type(detector).__name__}
    write_json_atomic(out / "detector.json", report)
    return report


__all__ = ["build_detector", "detect_boxes"]
