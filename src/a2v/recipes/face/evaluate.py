"""Evaluation of generated faces against the speaker's true face (the paper's Tables 2-3).

- identity: cosine similarity of face embeddings, generated vs true, and the same for random
  (generated, other speaker) pairs as a baseline;
- craniofacial measures (:mod:`a2v.recipes.face.measures`, after 2D frontalisation): per measure
  Pearson r and its p-value (``scipy.stats.pearsonr``) generated vs true, and for a random pairing;
- attributes (Table 2): a user's classifier (:func:`load_attribute_classifier`) on generated and
  true pictures; agreement rate per categorical attribute (gender, age group), Pearson r / mean
  absolute difference per numeric one (age in years), each with its random-pair baseline;
- a guidance sweep: one row of all the above per guidance weight w (``guidances``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import InputError
from a2v.recipes.face.check import DETECT_MIN_SIDE_PX, detect_enlarged
from a2v.recipes.face.measures import MEASURES, craniofacial_measures, frontalise

AttrFn = Callable[[np.ndarray], dict[str, Any]]

__all__ = ["MEASURES", "craniofacial_measures", "pearson", "random_pairing", "identity_scores",
           "measure_correlations", "attribute_scores", "load_attribute_classifier", "landmarks_of",
           "evaluate_pipeline", "evaluate_guidance_sweep", "format_rows"]


def pearson(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson r and two-sided p-value of two (N,) arrays (``scipy.stats.pearsonr``); NaN, NaN when
    N < 3 or either is constant."""
    from scipy.stats import pearsonr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    res = pearsonr(a, b)
    return float(res.statistic), float(res.pvalue)


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


def measure_correlations(gen_lm: np.ndarray, true_lm: np.ndarray, seed: int = 0,
                         frontalised: bool = True) -> dict[str, float]:
    """Per measure: Pearson r and p generated vs true (``corr/<m>``, ``p/<m>``) and for a random
    pairing (``corr_random/<m>``, ``p_random/<m>``); landmarks (N,68,2), frontalised first when asked."""
    if frontalised:
        gen_lm, true_lm = frontalise(gen_lm), frontalise(true_lm)
    mg, mt = craniofacial_measures(gen_lm), craniofacial_measures(true_lm)
    perm = random_pairing(len(mt), seed)
    out: dict[str, float] = {}
    for j, name in enumerate(MEASURES):
        out[f"corr/{name}"], out[f"p/{name}"] = pearson(mg[:, j], mt[:, j])
        out[f"corr_random/{name}"], out[f"p_random/{name}"] = pearson(mg[:, j], mt[perm, j])
    return out


def attribute_scores(attr_fn: AttrFn, gen: np.ndarray, true: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Attributes of generated vs true pictures (uint8 (N,H,W,3)), see the module docstring.

    ``attr_fn(picture) -> {"gender": "f", "age": 34.0, ...}``; keys present for both pictures of
    every pair are scored: ``agree/<k>`` (+ ``agree_random/<k>``) for strings / ints / bools,
    ``corr/<k>``, ``p/<k>``, ``mad/<k>`` (+ ``corr_random/<k>``, ``mad_random/<k>``) for floats.
    """
    pairs = [(attr_fn(a), attr_fn(b)) for a, b in zip(gen, true, strict=True)]
    if not pairs:
        return {}
    keys = sorted(set.intersection(*(set(g) & set(t) for g, t in pairs)))
    perm = random_pairing(len(pairs), seed)
    out: dict[str, float] = {}
    for k in keys:
        g = [p[0][k] for p in pairs]
        t = [p[1][k] for p in pairs]
        if all(isinstance(v, float | np.floating) for v in g + t):
            ga, ta = np.asarray(g, np.float64), np.asarray(t, np.float64)
            out[f"corr/{k}"], out[f"p/{k}"] = pearson(ga, ta)
            out[f"corr_random/{k}"], _ = pearson(ga, ta[perm])
            out[f"mad/{k}"] = float(np.abs(ga - ta).mean())
            out[f"mad_random/{k}"] = float(np.abs(ga - ta[perm]).mean())
        else:
            out[f"agree/{k}"] = float(np.mean([a == b for a, b in zip(g, t, strict=True)]))
            out[f"agree_random/{k}"] = float(np.mean([g[i] == t[j] for i, j in enumerate(perm)]))
    return out


def load_attribute_classifier(path: str | Path) -> AttrFn:
    """A user's age/gender classifier: a Python file defining ``classify(picture) -> dict``.

    ``picture``: RGB uint8 (H,W,3) face; the dict maps attribute names to labels (str/int) or
    numbers (float), e.g. ``{"gender": "female", "age": 31.0}``. InputError when the file or the
    function is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"attribute classifier not found: {p} (give a .py file defining classify(picture) -> dict)")
    if p.suffix != ".py":
        raise InputError(f"attribute classifier {p}: expected a Python file (.py) defining classify(picture) -> dict")
    spec = importlib.util.spec_from_file_location(f"a2v_user_attributes_{abs(hash(str(p.resolve())))}", p)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load the attribute classifier {p}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, "classify", None)
    if not callable(fn):
        raise InputError(f"attribute classifier {p} has no function classify(picture) -> dict")
    return fn


def landmarks_of(images: np.ndarray, upsample: int = 1, min_side_px: int = DETECT_MIN_SIDE_PX
                 ) -> tuple[np.ndarray, np.ndarray]:
    """dlib 68 landmarks of the largest face per picture: (N,68,2) px and found bool (N,).

    Pictures smaller than ``min_side_px`` are enlarged (bicubic) for detection, as dlib's HOG
    detector misses faces under ~40 px; landmarks come back in the input's pixels.
    """
    from a2v.face import DlibLandmarker

    lmk = DlibLandmarker()
    out = np.full((len(images), 68, 2), np.nan, np.float32)
    found = np.zeros(len(images), bool)
    for i, (big, k, boxes) in enumerate(detect_enlarged(images, upsample, min_side_px)):
        if len(boxes):
            j = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
            out[i], found[i] = lmk(big, boxes[j]) / k, True
    return out, found


def _true_faces(data: str | Path, max_items: int) -> tuple[list[np.ndarray], np.ndarray]:
    from a2v.recipes.face.data import read_talking_faces

    items = read_talking_faces(data, 1)
    n = min(max_items, len(items.images))
    return items.wavs[:n], items.images[:n]


def evaluate_guidance_sweep(pipe: Any, data: str | Path, guidances: Sequence[float | None] = (None,),
                            max_items: int = 100, seed: int = 0, progress: bool = True, embedder: Any = None,
                            attr_fn: AttrFn | None = None, frontalised: bool = True) -> list[dict[str, float]]:
    """One row of metrics per guidance weight (None = the model's ``sample.guidance_w``).

    Every row generates one face per clip (same seeds for every w) and scores it against the clip's
    face. Pictures where no face is found are left out of the landmark measures and counted
    (``n_no_face_generated``, ``n_no_face_true``).
    """
    import cv2
    from tqdm.auto import tqdm

    from a2v.recipes.face.embedding import FaceEmbedder

    wavs, true = _true_faces(data, max_items)
    n = len(true)
    embedder = embedder or FaceEmbedder(pipe.cfg.embedding)
    true_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    rows = []
    for w in guidances:
        w_used = float(pipe.cfg.sample.guidance_w if w is None else w)
        gen = np.stack([pipe.generate(audio=wavs[i], num=1, guidance_w=w_used, seed=seed + i, progress=False)[0]
                        for i in tqdm(range(n), desc=f"generating (w={w_used:g})", disable=not progress)])
        size = gen.shape[1:3]
        if size not in true_cache:  # the true faces at the generated size, scored once
            tr = np.stack([cv2.resize(t, size[::-1], interpolation=cv2.INTER_AREA) for t in true])
            true_cache[size] = (tr, embedder(tr), *landmarks_of(tr))
        true_r, true_emb, lt, ft = true_cache[size]
        row: dict[str, float] = {"guidance": w_used, "n": float(n)}
        row.update(identity_scores(embedder(gen), true_emb, seed))
        lg, fg = landmarks_of(gen)
        ok = fg & ft
        row["n_no_face_generated"], row["n_no_face_true"] = float((~fg).sum()), float((~ft).sum())
        if ok.sum() >= 3:
            row.update(measure_correlations(lg[ok], lt[ok], seed, frontalised))
        if attr_fn is not None:
            row.update({f"attr_{k}": v for k, v in attribute_scores(attr_fn, gen, true_r, seed).items()})
        rows.append(row)
    return rows


def evaluate_pipeline(pipe: Any, data: str | Path, max_items: int = 100, seed: int = 0, progress: bool = True,
                      embedder: Any = None, attr_fn: AttrFn | None = None,
                      guidance_w: float | None = None) -> dict[str, float]:
    """The metrics of one guidance weight (see :func:`evaluate_guidance_sweep`)."""
    return evaluate_guidance_sweep(pipe, data, (guidance_w,), max_items, seed, progress, embedder, attr_fn)[0]


def format_rows(rows: list[dict[str, float]]) -> str:
    """A plain-text table: one line per guidance weight, identity and mean |r| columns."""
    lines = ["   w   n  id_cos  id_cos_rand  mean_r  mean_r_rand  no_face_gen"]
    for r in rows:
        rs = [r[f"corr/{m}"] for m in MEASURES if f"corr/{m}" in r]
        rr = [r[f"corr_random/{m}"] for m in MEASURES if f"corr_random/{m}" in r]
        mr = f"{np.nanmean(rs):6.3f}" if rs and not np.all(np.isnan(rs)) else "     -"
        mrr = f"{np.nanmean(rr):11.3f}" if rr and not np.all(np.isnan(rr)) else "          -"
        lines.append(f"{r['guidance']:4g} {int(r['n']):3d}  {r['identity_cosine']:6.3f}  "
                     f"{r['identity_cosine_random_pair']:11.3f}  {mr}  {mrr}  {int(r['n_no_face_generated']):11d}")
    return "\n".join(lines)
