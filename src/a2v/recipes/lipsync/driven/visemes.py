"""ARPAbet phones -> viseme mouth shapes -> per-frame mouth parameters with coarticulation.

Each phone has a target mouth shape (``open`` in [0, 1]: 0 = lips together, 1 = widest jaw drop
of normal speech; ``spread`` in [-1, 1]: -1 = rounded/protruded, +1 = spread) and a dominance:
how strongly it holds its target against its neighbours. The per-frame parameters blend the
targets with the dominance model of Cohen & Massaro (1993), "Modeling coarticulation in
synthetic visual speech": ``P(t) = sum_i D_i(t) T_i / sum_i D_i(t)`` with
``D_i(t) = alpha_i * exp(-theta * tau^c)``, tau = time from ``t`` to segment ``i`` (0 inside it).

Targets are hand-set from the usual viseme groups (Fisher 1968; the MPEG-4 FAP viseme table):
bilabials shut the lips and dominate (a /p/ must close), vowels open by jaw height
(AA > AE, AO > AH, EH > IH > IY, UW) and round or spread by lip rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Viseme:
    """Mouth target of one phone: open in [0,1], spread in [-1,1], dominance alpha > 0."""

    open: float
    spread: float
    dominance: float = 1.0


_V = Viseme
# fmt: off
VISEMES: dict[str, Viseme] = {
    "SIL": _V(0.0, 0.0, 0.6),
    # bilabials: lips pressed together, strongly dominant
    "P": _V(0.0, 0.0, 4.0), "B": _V(0.0, 0.0, 4.0), "M": _V(0.0, 0.0, 4.0),
    # labiodentals: lower lip to upper teeth
    "F": _V(0.08, 0.1, 3.0), "V": _V(0.08, 0.1, 3.0),
    # dentals, alveolars
    "TH": _V(0.25, 0.1, 1.2), "DH": _V(0.22, 0.1, 1.2),
    "T": _V(0.2, 0.2, 1.0), "D": _V(0.2, 0.2, 1.0), "N": _V(0.2, 0.15, 0.8), "L": _V(0.28, 0.1, 0.8),
    "S": _V(0.12, 0.35, 1.5), "Z": _V(0.12, 0.35, 1.5),
    # post-alveolars: rounded, protruded
    "SH": _V(0.2, -0.45, 1.5), "ZH": _V(0.2, -0.45, 1.5), "CH": _V(0.18, -0.4, 1.5), "JH": _V(0.18, -0.4, 1.5),
    # velars, glottal: mouth follows the vowels around them (low dominance)
    "K": _V(0.3, 0.05, 0.5), "G": _V(0.3, 0.05, 0.5), "NG": _V(0.25, 0.05, 0.5), "HH": _V(0.4, 0.0, 0.3),
    # approximants
    "R": _V(0.2, -0.45, 1.0), "W": _V(0.12, -0.85, 2.0), "Y": _V(0.2, 0.45, 0.8),
    # vowels
    "AA": _V(1.0, 0.1), "AE": _V(0.8, 0.4), "AH": _V(0.62, 0.1), "AO": _V(0.8, -0.4),
    "AW": _V(0.8, -0.3), "AY": _V(0.85, 0.2), "EH": _V(0.6, 0.4), "ER": _V(0.38, -0.35),
    "EY": _V(0.5, 0.5), "IH": _V(0.4, 0.45), "IY": _V(0.28, 0.65), "OW": _V(0.6, -0.6),
    "OY": _V(0.62, -0.45), "UH": _V(0.4, -0.5), "UW": _V(0.3, -0.8),
}
# fmt: on
UNKNOWN = Viseme(0.35, 0.0, 0.5)  # a phone missing from the table (e.g. a noise label)


def viseme_of(phone: str) -> Viseme:
    """ARPAbet phone (stress digits allowed: 'AA1') -> its Viseme; unknown phones -> :data:`UNKNOWN`."""
    return VISEMES.get(phone.rstrip("012").upper(), UNKNOWN)


def viseme_tracks(
    segments: Sequence[tuple[str, float, float]],
    fps: float,
    n_frames: int,
    theta_per_s: float = 30.0,
    c: float = 1.0,
    lead_s: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth parameters from timed phones (dominance blending, Cohen & Massaro 1993).

    segments: [(ARPAbet phone or 'SIL', start_s, end_s)] in time order (gaps count as silence).
    fps: video frame rate in frames/s; frame f is sampled at its centre ``(f + 0.5) / fps - lead_s``
    (the mouth moves slightly before the sound it makes, ``lead_s`` seconds).
    theta_per_s: dominance decay rate per second outside a segment (larger = less coarticulation).
    c: decay exponent (1 = exponential).

    Returns (open float32 (F,) in [0, 1], spread float32 (F,) in [-1, 1]) at ``fps``.
    """
    t = (np.arange(n_frames) + 0.5) / fps - lead_s  # (F,) sample times in s
    segs = [(p, float(a), float(b)) for p, a, b in segments if b > a]
    gaps: list[tuple[str, float, float]] = []
    prev = 0.0
    for _, a, b in segs:  # silence where no phone covers the audio
        if a > prev + 1e-6:
            gaps.append(("SIL", prev, a))
        prev = max(prev, b)
    end = n_frames / fps
    if prev < end - 1e-6:
        gaps.append(("SIL", prev, end))
    segs = sorted(segs + gaps, key=lambda s: s[1])
    if not segs:
        return np.zeros(n_frames, np.float32), np.zeros(n_frames, np.float32)
    vis = [viseme_of(p) for p, _, _ in segs]
    start = np.array([a for _, a, _ in segs])  # (N,)
    stop = np.array([b for _, _, b in segs])  # (N,)
    alpha = np.array([v.dominance for v in vis])  # (N,)
    target = np.array([[v.open, v.spread] for v in vis])  # (N,2)
    tau = np.maximum(start[None, :] - t[:, None], 0) + np.maximum(t[:, None] - stop[None, :], 0)  # (F,N) s
    dom = alpha[None, :] * np.exp(-theta_per_s * tau**c)  # (F,N)
    dom = np.maximum(dom, 1e-12)
    params = dom @ target / dom.sum(axis=1, keepdims=True)  # (F,N)x(N,2)->(F,2)
    return params[:, 0].astype(np.float32), params[:, 1].astype(np.float32)
