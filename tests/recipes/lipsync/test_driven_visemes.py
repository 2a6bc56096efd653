"""Visemes: table lookup, dominance blending (Cohen & Massaro), closure on bilabials."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.recipes.lipsync.driven.visemes import UNKNOWN, VISEMES, viseme_of, viseme_tracks


def test_table_covers_arpabet_and_strips_stress():
    arpabet = "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
    assert set(arpabet) <= set(VISEMES)
    assert viseme_of("AA1") == VISEMES["AA"] and viseme_of("aa") == VISEMES["AA"]
    assert viseme_of("+NSN+") == UNKNOWN
    for v in VISEMES.values():
        assert 0 <= v.open <= 1 and -1 <= v.spread <= 1 and v.dominance > 0


def test_long_segments_reach_their_targets():
    segs = [("SIL", 0.0, 0.5), ("AA", 0.5, 1.5), ("UW", 1.5, 2.5), ("SIL", 2.5, 3.0)]
    op, sp = viseme_tracks(segs, fps=25.0, n_frames=75)
    assert op.shape == sp.shape == (75,) and op.dtype == np.float32
    assert op[25] == pytest.approx(VISEMES["AA"].open, abs=0.02)  # t = 1.0 s, middle of AA
    assert sp[50] == pytest.approx(VISEMES["UW"].spread, abs=0.02)  # middle of UW: rounded
    assert op[2] < 0.02 and op[-2] < 0.02  # silence: lips together


def test_dominant_bilabial_closes_between_vowels_and_coarticulation_is_smooth():
    segs = [("AA", 0.0, 0.3), ("M", 0.3, 0.38), ("AA", 0.38, 0.7)]
    op, _ = viseme_tracks(segs, fps=100.0, n_frames=70, lead_s=0.0)
    assert op[34] < 0.25 * op[10]  # the /m/ shuts the mouth despite being 80 ms long
    k_segs = [("AA", 0.0, 0.3), ("K", 0.3, 0.38), ("AA", 0.38, 0.7)]
    op_k, _ = viseme_tracks(k_segs, fps=100.0, n_frames=70, lead_s=0.0)
    assert op_k[34] > 0.5  # a /k/ (low dominance) keeps the vowels' opening
    assert np.abs(np.diff(op)).max() < 0.35  # no jumps at 100 fps


def test_gaps_are_silence_and_empty_input_is_closed():
    op, _ = viseme_tracks([("AA", 1.0, 1.4)], fps=25.0, n_frames=75)
    assert op[5] < 0.02 and op[30] > 0.8 and op[70] < 0.02
    op0, sp0 = viseme_tracks([], fps=25.0, n_frames=10)
    assert not op0.any() and not sp0.any()
