"""Spoken-language identification with a multilingual Whisper model (Radford et al. 2022, sec. 2.3).

Whisper's decoder predicts a language token (``<|en|>``, ``<|zh|>``, ...) right after
``<|startoftranscript|>``; its softmax over the language tokens alone
(``generation_config.lang_to_id``) is the language distribution (openai/whisper
``decoding.detect_language``; transformers ``WhisperForConditionalGeneration.detect_language``
returns the arg-max only). Any multilingual Whisper folder works (tiny ... large-v3, 99 languages);
English-only ones (``*.en``) hold no language tokens and are refused.

Models load like :func:`a2v.encoders.asr.transcribe_whisper`: a local folder, or a hub id found in
the Hugging Face cache (downloaded only when allowed); the last model loaded is kept in memory.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from a2v.errors import InputError, MissingWeightsError

SR_HZ = 16000  # Whisper's input rate
WINDOW_S = 30.0  # Whisper's window: the language is judged from the first 30 s of speech
LEAD_SILENCE_DB = -40.0  # leading 25 ms frames quieter than this (dB below the loudest frame) are skipped
WHAT = "Whisper language identifier"


class LanguageId(NamedTuple):
    """Whisper's verdict: ``code`` ISO 639-1 (Whisper's own code where it has no such code, e.g.
    "haw", "yue"), ``prob`` its probability in [0, 1] among the model's languages, ``top3`` the
    three most probable [(code, prob)], most probable first."""

    code: str
    prob: float
    top3: list[tuple[str, float]]


# Whisper codes that are not ISO 639-1 although an ISO 639-1 code exists.
_ISO = {"jw": "jv"}


def token_code(token: str) -> str:
    """Whisper language token -> code: ``"<|de|>"`` -> ``"de"``, ``"<|jw|>"`` -> ``"jv"``."""
    code = token.strip().removeprefix("<|").removesuffix("|>")
    return _ISO.get(code, code)


def check_langid_model(
    model: str | os.PathLike, set_key: str = "--langid-model", allow_download: bool | None = None
) -> str:
    """Cheap check before any audio work: what to pass to ``from_pretrained`` (folder or hub id).

    Raises MissingWeightsError (one line, naming the folder or file) for a missing folder, a folder
    without config.json or weights, or a Whisper without language tokens; ``set_key`` is the option
    or config key named in the hint. Reads only small JSON files.
    """
    from a2v.encoders._hub import resolve_pretrained
    from a2v.encoders.speech import _check_weight_files

    src = resolve_pretrained(model, WHAT, set_key, allow_download)
    folder = Path(src)
    if not folder.is_dir():
        return src  # a hub id a download may fetch
    _check_weight_files(folder, WHAT)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "whisper":
        raise MissingWeightsError(
            f"{WHAT} folder {folder} holds a {cfg.get('model_type') or 'unknown'} model, not Whisper: "
            "give a multilingual Whisper folder (e.g. whisper-small)"
        )
    gen = folder / "generation_config.json"
    langs = json.loads(gen.read_text(encoding="utf-8")).get("lang_to_id") if gen.is_file() else None
    if not langs:
        raise MissingWeightsError(
            f"{WHAT} folder {folder} has no language tokens (lang_to_id in {gen.name}): English-only "
            "Whisper models (*.en) cannot identify languages; give a multilingual one (e.g. whisper-small)"
        )
    return src


@lru_cache(maxsize=1)
def _load(src: str, device: str, local: bool, fingerprint: str):  # noqa: ANN202 - (model, feature extractor)
    """The Whisper model (eval, on ``device``) and its feature extractor; ``fingerprint`` keys the cache."""
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(src, local_files_only=local)
    fe = WhisperFeatureExtractor.from_pretrained(src, local_files_only=local)
    return model.to(device).eval(), fe


def _skip_lead_silence(x: np.ndarray) -> np.ndarray:
    """Drop leading 25 ms frames more than |LEAD_SILENCE_DB| below the loudest frame: x (S,) -> (S',)."""
    from a2v.audio.align import envelope

    n = int(0.025 * SR_HZ)
    if x.size // n < 2:
        return x
    db = envelope(x, SR_HZ, SR_HZ / n, db=True)  # (S,)->(m,) dBFS per 25 ms frame
    first = int(np.argmax(db - db.max() > LEAD_SILENCE_DB))
    return x[first * n :]


def identify_language(
    wav: np.ndarray,
    sr: int,
    model: str | os.PathLike,
    device: str | None = None,
    allow_download: bool | None = None,
    set_key: str = "--langid-model",
) -> LanguageId:
    """Spoken language of ``wav``: float32 (S,) in [-1, 1] at ``sr`` Hz -> :class:`LanguageId`.

    ``model``: a multilingual Whisper folder or hub id; ``device``: "cpu" (default), "cuda", ...
    The first 30 s of speech (leading silence skipped) are resampled to 16 kHz, turned into the
    model's log-mel input (80 or 128 bins, zero-padded to 30 s) and the first decoder step's logits
    over the language tokens are soft-maxed. Raises InputError for an empty or non-mono waveform,
    MissingWeightsError (one line) for a model not on disk (see :func:`check_langid_model`).
    """
    import torch

    from a2v.audio.io import resample
    from a2v.encoders._hub import hub_offline, missing_weights, model_fingerprint

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"language identification expects a non-empty mono waveform (S,), got shape {x.shape}")
    src = check_langid_model(model, set_key, allow_download)
    local = Path(src).is_dir()
    x = resample(x, int(sr), SR_HZ) if sr != SR_HZ else x  # (S,)->(S16,)
    x = _skip_lead_silence(x)[: int(WINDOW_S * SR_HZ)]  # (S16,)->(<=480000,)
    try:
        net, fe = _load(src, device or "cpu", local or hub_offline(), model_fingerprint(src) if local else "")
    except OSError as e:
        raise missing_weights(WHAT, str(model), set_key) from e
    gen = net.generation_config
    tokens = list(gen.lang_to_id or {})
    if not tokens:
        raise MissingWeightsError(f"{WHAT} {model}: the model has no language tokens (English-only Whisper)")
    ids = torch.tensor([gen.lang_to_id[t] for t in tokens], dtype=torch.long)  # (L,)
    feats = fe(x, sampling_rate=SR_HZ, return_tensors="pt").input_features  # (1,n_mels,3000)
    feats = feats.to(device=net.device, dtype=net.dtype)
    start = torch.full((1, 1), int(gen.decoder_start_token_id), dtype=torch.long, device=net.device)  # (1,1)
    with torch.no_grad():
        logits = net(input_features=feats, decoder_input_ids=start, use_cache=False).logits[0, -1]  # (1,1,V)->(V,)
    probs = torch.softmax(logits.float().cpu()[ids], dim=0)  # (V,)->(L,) over language tokens only
    order = torch.argsort(probs, descending=True)[:3].tolist()
    top3 = [(token_code(tokens[i]), float(probs[i])) for i in order]
    return LanguageId(top3[0][0], top3[0][1], top3)
