"""Offline, deterministic text-to-speech through eSpeak NG (formant synthesis).

Used by demos and tests to make speech without recordings or model weights. Backends:
``"binary"`` runs the ``espeak-ng`` program (Debian package espeak-ng); ``"library"`` calls
libespeak-ng from the ``espeakng-loader`` wheel (``pip install 'a2v[tts]'``) through ctypes;
``"auto"`` uses the program when it is on PATH, else the wheel. The same text, voice and
rate give the same samples on one backend (the two backends may ship different versions).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from a2v.errors import ConfigError, InputError, MissingDependencyError

_MIN_WPM, _MAX_WPM = 80, 450

# espeak_ng/speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_ESPEAK_RATE = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _synth_binary(exe: str, text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="a2v-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd = [exe, "-v", voice, "-s", str(rate_wpm), "-b", "1", "--stdin", "-w", str(out)]
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120, check=False)
        err = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out.exists():
            if "voice does not exist" in err:
                raise ConfigError(f"espeak-ng has no voice {voice!r}; list them with: espeak-ng --voices")
            raise InputError(f"espeak-ng failed (exit {proc.returncode}): {err or 'no output'}")
        wav, sr = sf.read(str(out), dtype="float32")  # (S,) int16 -> float32 in [-1, 1]
    return wav, int(sr)


def _synth_library_here(text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    """Synthesise in this process with libespeak-ng from the espeakng-loader wheel.

    Called in a fresh process (:func:`_synth_library`): the library keeps static state that
    survives espeak_Terminate, so a second text in one process comes out a few samples off.
    """
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    data = espeakng_loader.get_data_path().encode()
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
    if sr <= 0:
        raise MissingDependencyError("libespeak-ng from espeakng-loader failed to initialise; apt-get install espeak-ng")
    chunks: list[np.ndarray] = []

    def collect(wav, n, _events):  # called by espeak_Synth with int16 chunks; 0 = continue
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())  # (s,) int16
        return 0

    callback = _SYNTH_CALLBACK(collect)  # kept referenced until synthesis returns
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ConfigError(f"libespeak-ng has no voice {voice!r}; list them with: espeak-ng --voices")
    lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
    buf = ctypes.create_string_buffer(text.encode("utf-8"))
    status = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    lib.espeak_Terminate()
    if status != 0:
        raise InputError(f"libespeak-ng failed to synthesise the text (error {status})")
    wav = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)  # (S,)
    return wav.astype(np.float32) / 32768.0, int(sr)


def _synth_library(text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    """:func:`_synth_library_here` in a fresh spawned process, so equal inputs give equal samples."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            "speech synthesis needs eSpeak NG: apt-get install espeak-ng, or pip install 'a2v[tts]'"
        ) from e
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_synth_library_here, text, voice, rate_wpm).result()


def synthesize_speech(
    text: str, sr: int = 16000, voice: str = "en", rate_wpm: int = 150, backend: str = "auto"
) -> np.ndarray:
    """Speak ``text`` with eSpeak NG.

    Returns float32 (S,) in [-1, 1] at ``sr`` Hz (synthesised at 22.05 kHz, resampled with
    :func:`a2v.audio.io.resample`). ``voice`` is an eSpeak NG voice ("en", "en-us", "fr"...),
    ``rate_wpm`` the speaking rate in words per minute (80..450). ``backend`` is "auto",
    "binary" or "library" (see module docstring). Deterministic for a given backend.

    Raises InputError for empty text, ConfigError for an unknown voice or rate,
    MissingDependencyError when neither backend is available.
    """
    from a2v.audio.io import resample

    if not text or not text.strip():
        raise InputError("cannot synthesise speech from empty text; give some words")
    if not _MIN_WPM <= int(rate_wpm) <= _MAX_WPM:
        raise ConfigError(f"rate_wpm={rate_wpm} is outside eSpeak NG's {_MIN_WPM}..{_MAX_WPM} words per minute")
    if backend not in {"auto", "binary", "library"}:
        raise ConfigError(f"unknown TTS backend {backend!r}: use 'auto', 'binary' or 'library'")
    exe = shutil.which("espeak-ng") if backend in {"auto", "binary"} else None
    if backend == "binary" and exe is None:
        raise MissingDependencyError("speech synthesis needs the espeak-ng program: apt-get install espeak-ng")
    if exe is not None:
        wav, sr_in = _synth_binary(exe, text, voice, int(rate_wpm))
    else:
        wav, sr_in = _synth_library(text, voice, int(rate_wpm))
    if wav.size == 0:
        raise InputError(f"eSpeak NG produced no audio for the text {text[:40]!r}; give pronounceable words")
    return np.clip(resample(wav, sr_in, sr), -1.0, 1.0)  # (S_in,)->(S,)
