"""Craniofacial measures of a face from its 68 iBUG landmarks, after an optional 2D frontalisation.

The twelve measures follow Speech2Face's craniofacial-measure table (Oh et al. 2019), as we read it,
for the paper's Table 3 (Pearson r generated vs true); the landmark definitions below
(anthropometric points approximated by iBUG-68 points) are ours. Lengths are divided by the
inter-ocular distance and areas by its square, so no measure depends on the picture's scale;
indices are ratios (x100 as in anthropometry).

Frontalisation (ours, 2D): the roll is removed and the shape averaged with its mirror image,
similarity-aligned (``skimage.transform.SimilarityTransform``), which cancels left/right
asymmetry from a turned head to first order. A full 3D frontalisation (a reference 3D face) is not
shipped; ``frontalise=False`` measures the raw landmarks.
"""

from __future__ import annotations

import numpy as np

# iBUG-68 index of each point's mirror image (left <-> right)
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw 0..16
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows 17..21 <-> 26..22
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes 36..47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips 48..59
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips 60..67
)

# points: nasion 27, subnasale 33, alare 31/35, stomion = mean(62, 66), labrale sup. 51 / inf. 57,
# gnathion 8, gonion ~ 4/12, zygion ~ 1/15 (face width), endocanthion 39/42, exocanthion 36/45,
# cheilion 48/54, crista philtri ~ 50/52 (upper-lip peaks), lateral nostril base 31/35.
MEASURES: tuple[str, ...] = (
    "upper_lip_height", "lateral_upper_lip_heights", "jaw_width", "nose_height", "nose_width",
    "labio_oral_region", "mandibular_index", "intercanthal_index", "nasal_index", "vermilion_height_index",
    "mouth_face_width_index", "nose_area",
)


def _d(lm: np.ndarray, a: int | list[int], b: int | list[int]) -> np.ndarray:
    pa = lm[:, a].mean(1) if isinstance(a, list) else lm[:, a]  # (N,2)
    pb = lm[:, b].mean(1) if isinstance(b, list) else lm[:, b]
    return np.linalg.norm(pa - pb, axis=-1)  # (N,)


def _area(lm: np.ndarray, idx: list[int]) -> np.ndarray:
    """Shoelace area (N,) of the polygon through landmarks ``idx``."""
    p = lm[:, idx]  # (N,K,2)
    x, y = p[..., 0], p[..., 1]
    return 0.5 * np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1))


def craniofacial_measures(lm: np.ndarray) -> np.ndarray:
    """Landmarks float (N,68,2) px -> measures float64 (N, len(MEASURES)) (scale free, see module doc)."""
    lm = np.asarray(lm, np.float64)
    iod = np.maximum(np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=-1), 1e-9)  # (N,)
    sto = [62, 66]
    nose_h, nose_w = _d(lm, 27, 33), _d(lm, 31, 35)
    jaw_w, face_w, mouth_w = _d(lm, 4, 12), _d(lm, 1, 15), _d(lm, 48, 54)
    cols = {
        "upper_lip_height": _d(lm, 33, sto) / iod,
        "lateral_upper_lip_heights": 0.5 * (_d(lm, 31, 50) + _d(lm, 35, 52)) / iod,
        "jaw_width": jaw_w / iod,
        "nose_height": nose_h / iod,
        "nose_width": nose_w / iod,
        "labio_oral_region": _area(lm, list(range(48, 60))) / iod**2,
        "mandibular_index": 100 * _d(lm, sto, 8) / np.maximum(jaw_w, 1e-9),
        "intercanthal_index": 100 * _d(lm, 39, 42) / np.maximum(_d(lm, 36, 45), 1e-9),
        "nasal_index": 100 * nose_w / np.maximum(nose_h, 1e-9),
        "vermilion_height_index": _d(lm, 51, 62) / np.maximum(_d(lm, 66, 57), 1e-9),
        "mouth_face_width_index": 100 * mouth_w / np.maximum(face_w, 1e-9),
        "nose_area": _area(lm, [27, 31, 32, 33, 34, 35]) / iod**2,
    }
    return np.stack([cols[k] for k in MEASURES], axis=1)  # (N,M)


def frontalise(lm: np.ndarray) -> np.ndarray:
    """2D frontalisation (N,68,2) -> (N,68,2): eye line horizontal, shape averaged with its mirror.

    The mirror image (x -> -x, points renumbered by :data:`MIRROR`) is similarity-aligned onto the
    shape before averaging; shapes where the alignment fails are returned unchanged.
    """
    from skimage.transform import SimilarityTransform

    out = np.asarray(lm, np.float64).copy()
    for i, p in enumerate(out):
        eye_l, eye_r = p[36:42].mean(0), p[42:48].mean(0)
        ang = np.arctan2(*(eye_r - eye_l)[::-1])  # roll, radians
        c, s = np.cos(-ang), np.sin(-ang)
        q = (p - p.mean(0)) @ np.array([[c, s], [-s, c]])  # (68,2) rotated by -roll
        m = q[MIRROR] * np.array([-1.0, 1.0])  # mirror image, renumbered
        tf = SimilarityTransform.from_estimate(m, q)
        if tf:
            out[i] = 0.5 * (q + tf(m))
    return out
