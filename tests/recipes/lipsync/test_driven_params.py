"""Mode choice: envelope for non-English or on request, phones for English speech, fallbacks reported."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.recipes.lipsync.driven.params import mouth_parameters

SR = 16000


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    from a2v.audio import synthesize_speech
    from a2v.errors import MissingDependencyError

    try:
        return synthesize_speech("Hello, I am a talking photo.", sr=SR)
    except MissingDependencyError as e:
        pytest.skip(str(e))


def test_envelope_mode_and_non_english_skip_recognition(english):
    n = round(len(english) / SR * 25)
    op, sp, info = mouth_parameters(english, SR, 25.0, n, mode="envelope")
    assert info["mode"] == "envelope" and op.shape == (n,) and not sp.any()
    op2, _, info2 = mouth_parameters(english, SR, 25.0, n, mode="auto", language="fr")
    assert info2["mode"] == "envelope" and "not English" in info2["mode_reason"]
    np.testing.assert_array_equal(op, op2)
    with pytest.raises(InputError, match="unknown lip-sync mode"):
        mouth_parameters(english, SR, 25.0, n, mode="magic")


def test_auto_uses_phones_for_english_and_agrees_with_loudness(english):
    pytest.importorskip("pocketsphinx")
    n = round(len(english) / SR * 25)
    op, sp, info = mouth_parameters(english, SR, 25.0, n, transcript="Hello, I am a talking photo.")
    assert info["mode"] == "phoneme+envelope" and info["phones"] >= 10
    assert "forced alignment" in info["phone_source"]
    assert info["phone_loudness_agreement"] > 0.3
    assert op.min() >= 0 and op.max() <= 1 and sp.min() >= -1 and sp.max() <= 1
    assert sp.std() > 0.05  # rounding / spreading comes from the phones


def test_auto_falls_back_when_phones_disagree_or_fail(english, monkeypatch):
    from a2v.errors import MissingDependencyError
    from a2v.recipes.lipsync.driven import params

    n = round(len(english) / SR * 25)
    dur = len(english) / SR
    # phones only where the audio is silent (tail and head): timing unrelated to the loudness
    wrong = [("AA", 0.0, 0.1), ("SIL", 0.1, dur - 0.1), ("AA", dur - 0.1, dur)]
    monkeypatch.setattr(params, "_phones", lambda *a: (wrong, "test"))
    op, sp, info = mouth_parameters(english, SR, 25.0, n, mode="auto")
    assert info["mode"] == "envelope" and "disagrees with loudness" in info["mode_reason"]
    assert not sp.any()
    _, _, forced = mouth_parameters(english, SR, 25.0, n, mode="phoneme")
    assert forced["mode"] == "phoneme"  # asked for: used even when it disagrees

    def broken(*a):
        raise MissingDependencyError("offline speech recognition needs the package 'pocketsphinx'")

    monkeypatch.setattr(params, "_phones", broken)
    _, _, info2 = mouth_parameters(english, SR, 25.0, n, mode="auto")
    assert info2["mode"] == "envelope" and "pocketsphinx" in info2["mode_reason"]
    with pytest.raises(MissingDependencyError):
        mouth_parameters(english, SR, 25.0, n, mode="phoneme")
