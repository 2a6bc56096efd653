"""eSpeak NG speech synthesis: speech-like output of plausible duration, deterministic."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from a2v.audio import envelope, is_silent, synthesize_speech
from a2v.errors import ConfigError, InputError

TEXT = "set white with p two soon"  # a GRID sentence: 6 words
HAS_BINARY = shutil.which("espeak-ng") is not None
HAS_WHEEL = importlib.util.find_spec("espeakng_loader") is not None
BACKENDS = [
    pytest.param("binary", marks=pytest.mark.skipif(not HAS_BINARY, reason="espeak-ng program not installed")),
    pytest.param("library", marks=pytest.mark.skipif(not HAS_WHEEL, reason="espeakng-loader not installed")),
]


def _speech_checks(wav: np.ndarray, sr: int, n_words: int, wpm: int) -> None:
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert np.abs(wav).max() <= 1.0 and not is_silent(wav)
    seconds = wav.size / sr
    nominal = n_words / wpm * 60  # 2.4 s for 6 words at 150 wpm
    assert 0.5 * nominal < seconds < 2.0 * nominal, seconds
    # Speech is voiced: most energy in the 80 Hz..4 kHz band, not a flat noise spectrum.
    spec = np.abs(np.fft.rfft(wav)) ** 2
    freqs = np.fft.rfftfreq(wav.size, 1 / sr)
    assert spec[(freqs > 80) & (freqs < 4000)].sum() / spec.sum() > 0.8
    # Syllables: the 25 fps loudness envelope goes up and down (pauses between words).
    env = envelope(wav, sr, 25)
    assert env.max() > 10 * np.percentile(env, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_speech_like_and_deterministic(backend: str) -> None:
    a = synthesize_speech(TEXT, backend=backend)
    _speech_checks(a, 16000, 6, 150)
    b = synthesize_speech(TEXT, backend=backend)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rate_and_sample_rate(backend: str) -> None:
    slow = synthesize_speech(TEXT, sr=22050, rate_wpm=100, backend=backend)
    fast = synthesize_speech(TEXT, sr=22050, rate_wpm=250, backend=backend)
    _speech_checks(slow, 22050, 6, 100)
    assert fast.size < 0.8 * slow.size


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_voice(backend: str) -> None:
    with pytest.raises(ConfigError, match="no voice"):
        synthesize_speech("hello", voice="qqq-nosuch", backend=backend)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="empty text"):
        synthesize_speech("   ")
    with pytest.raises(ConfigError, match="rate_wpm"):
        synthesize_speech("hello", rate_wpm=10)
    with pytest.raises(ConfigError, match="backend"):
        synthesize_speech("hello", backend="cloud")


@pytest.mark.skipif(not HAS_WHEEL, reason="espeakng-loader not installed")
def test_auto_falls_back_to_the_wheel_without_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    np.testing.assert_array_equal(synthesize_speech("hello", backend="auto"), synthesize_speech("hello", backend="library"))


def test_missing_both_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from a2v.errors import MissingDependencyError

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    with pytest.raises(MissingDependencyError, match="apt-get install espeak-ng"):
        synthesize_speech("hello")
    with pytest.raises(MissingDependencyError, match="apt-get install espeak-ng"):
        synthesize_speech("hello", backend="binary")
