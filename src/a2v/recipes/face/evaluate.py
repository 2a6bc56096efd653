"""Evaluation of generated faces against the speaker's true face.

- identity: cosine similarity of face embeddings, generated vs true, and the same for random
  (generated, other speaker) pairs as a baseline;
- craniofacial measures (after the paper's Table 3, from 68 dlib landmarks, lengths divided by the
  inter-ocular distance so they do not depend on scale): Pearson correlation generated vs true per
  measure, and the same correlation for a random pairing as the baseline;
- attributes: agreement rate of an attribute model (``attr_fn(image) -> {"gender": ..., "age_group": ...}``)
  on generated vs true pictures, when one is plugged in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# name -> (landmark a, landmark b): Euclidean distance between two iBUG-68 points (or point means)
MEASURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "face_width": ((0,), (16,)),
    "jaw_width": ((4,), (12,)),
    "face_height": ((27,), (8,)),
    "lower_face_height": ((33,), (8,)),
    "nose_width": ((31,), (35,)),
    "nose_height": ((27,), (33,)),
    "mouth_width": ((48,), (54,)),
    "upper_lip_height": ((51,), (62,)),
    "lower_lip_height": ((66,), (57,)),
    "eye_width": ((36, 42), (39, 45)),
    "brow_eye_distance": ((19, 24), (37, 44)),
    "chin_mouth_distance": ((57,), (8,)),
}


def craniofacial_measures(lm: np.ndarray) -> np.ndarray:
    """Landmarks float (N,68,2) px -> measures float64 (N, len(MEASURES)) in inter-ocular units."""
    lm = np.asarray(lm, np.float64)
    iod = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=-1)  # (N,)
    cols = []
    for a, b in MEASURES.values():
        pa, pb = lm[:, list(a)].mean(1), lm[:, list(b)].mean(1)  # (N,2)
        cols.append(np.linalg.norm(pa - pb, axis=-1) / np.maximum(iod, 1e-9))
    return np.stack(cols, axis=1)  # (N,M)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two (N,) arrays; NaN when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def random_pairing(n: int, seed: int = 0) -> np.ndarray:
    """A permutation of range(n) without fixed points (n >= 2): a random cyclic shift by 1..n-1."""
    if n < 2:
        return np.zeros(n, int)
    return (np.arange(n) + int(np.random.default_rng(seed).integers(1, n))) % n


def identity_scores(gen: np.ndarray, true: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Cosine similarity of unit embeddings (N,D), generated vs true, and vs a random other speaker."""
    g = gen / np.linalg.norm(gen, axis=1, keepdims=True)
    t = true / np.linalg.norm(true, axis=1, keepdims=True)
    same = (g * t).sum(1)  # (N,)
    other = (g * t[random_pairing(len(t), seed)]).sum(1)  # (N,)
    return {"identity_cosine": float(same.mean()), "identity_cosine_random_pair": float(other.mean())}


def measure_correlations(gen_lm: np.ndarray, true_lm: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Per-measure Pearson r generated vs true (``corr/<m>``) and for a random pairing (``corr_random/<m>``)."""
    mg, mt = craniofacial_measures(gen_lm), craniofacial_measures(true_lm)
    perm = random_pairing(len(mt), seed)
    out: dict[str, float] = {}
    for j, name in enumerate(MEASURES):
        out[f"corr/{name}"] = pearson(mg[:, j], mt[:, j])
        out[f"corr_random/{name}"] = pearson(mg[:, j], mt[perm, j])
    return out


def attribute_agreement(attr_fn: Callable[[np.ndarray], dict[str, Any]], gen: np.ndarray,
                        true: np.ndarray) -> dict[str, float]:
    """Fraction of pairs whose attributes agree, per attribute; gen/true uint8 (N,H,W,3)."""
    pairs = [(attr_fn(a), attr_fn(b)) for a, b in zip(gen, true, strict=True)]
    keys = sorted(set(pairs[0][0]) & set(pairs[0][1])) if pairs else []
    return {f"agree/{k}": float(np.mean([p[0][k] == p[1][k] for p in pairs])) for k in keys}


def landmarks_of(images: np.ndarray, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """dlib 68 landmarks of the largest face per picture: (N,68,2) px and found bool (N,)."""
    from a2v.face import DlibDetector, DlibLandmarker

    det, lmk = DlibDetector("hog", upsample=upsample), DlibLandmarker()
    out = np.full((len(images), 68, 2), np.nan, np.float32)
    found = np.zeros(len(images), bool)
    for i, im in enumerate(images):
        d = det.detect(im)[0]
        if len(d.boxes):
            k = int(np.argmax((d.boxes[:, 2] - d.boxes[:, 0]) * (d.boxes[:, 3] - d.boxes[:, 1])))
            out[i], found[i] = lmk(im, d.boxes[k]), True
    return out, found


def evaluate_pipeline(pipe: Any, data: str | Path, max_items: int = 100, seed: int = 0, progress: bool = True,
                      embedder: Any = None, attr_fn: Callable | None = None) -> dict[str, float]:
    """Generate one face per clip of a prepared dataset and score it against the clip's face.

    Pictures where no face is found are left out of the landmark measures and counted
    (``n_no_face_generated``, ``n_no_face_true``).
    """
    from tqdm.auto import tqdm

    from a2v.recipes.face.data import read_talking_faces
    from a2v.recipes.face.embedding import FaceEmbedder

    items = read_talking_faces(data, 1)
    n = min(max_items, len(items.images))
    true = items.images[:n]
    gen = np.stack([pipe.generate(audio=items.wavs[i], num=1, seed=seed + i, progress=False)[0]
                    for i in tqdm(range(n), desc="generating", disable=not progress)])
    import cv2

    true_r = np.stack([cv2.resize(t, gen.shape[1:3][::-1], interpolation=cv2.INTER_AREA) for t in true])
    embedder = embedder or FaceEmbedder(pipe.cfg.embedding)
    out: dict[str, float] = {"n": float(n)}
    out.update(identity_scores(embedder(gen), embedder(true_r), seed))
    lg, fg = landmarks_of(gen)
    lt, ft = landmarks_of(true_r)
    ok = fg & ft
    out["n_no_face_generated"], out["n_no_face_true"] = float((~fg).sum()), float((~ft).sum())
    if ok.sum() >= 3:
        out.update(measure_correlations(lg[ok], lt[ok], seed))
    if attr_fn is not None:
        out.update(attribute_agreement(attr_fn, gen, true_r))
    return out
