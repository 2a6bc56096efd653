"""Speech recognition: Whisper through transformers when a model is given, PocketSphinx offline otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2v.errors import ConfigError, InputError

_WHISPER_SR = 16000


@dataclass(frozen=True)
class Transcript:
    """Recognised text and word timings [(word, start_s, end_s)] in seconds of the input, in order."""

    text: str
    words: list[tuple[str, float, float]] = field(default_factory=list)


def transcribe(
    wav: np.ndarray,
    sr: int,
    backend: str = "auto",
    model: str | os.PathLike | None = None,
    device: str | None = None,
    language: str | None = None,
    progress: bool = True,
    allow_download: bool | None = None,
) -> Transcript:
    """Transcribe speech: wav float32 (S,) in [-1,1] at ``sr`` Hz -> :class:`Transcript`.

    ``backend``: "whisper" (transformers pipeline on ``model``, a Whisper folder or hub id,
    e.g. "openai/whisper-small"; word times from cross-attention when the model's generation
    config has alignment heads, else segment times), "pocketsphinx" (offline US English,
    ships its model) or "auto" (Whisper when ``model`` is given, else PocketSphinx).
    """
    if backend not in {"auto", "whisper", "pocketsphinx"}:
        raise ConfigError(f"unknown ASR backend {backend!r}: use 'auto', 'whisper' or 'pocketsphinx'")
    if backend == "whisper" or (backend == "auto" and model is not None):
        if model is None:
            raise ConfigError("the Whisper ASR backend needs a model: a folder or hub id such as openai/whisper-small")
        return transcribe_whisper(wav, sr, model, device, language, allow_download)
    from a2v.encoders.sphinx import transcribe_sphinx

    return transcribe_sphinx(wav, sr, progress=progress)


def _whisper_pipeline(src: str, device: str | None, local: bool):
    """The transformers ASR pipeline over the model, tokenizer and feature extractor loaded from ``src``."""
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline

    model = AutoModelForSpeechSeq2Seq.from_pretrained(src, local_files_only=local)
    proc = AutoProcessor.from_pretrained(src, local_files_only=local)
    return pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=proc.tokenizer,
        feature_extractor=proc.feature_extractor,
        device=device,
    )


def _chunks_to_words(chunks: list[dict], duration: float) -> list[tuple[str, float, float]]:
    """Pipeline chunks [{"text", "timestamp": (start, end|None)}] -> [(text, start_s, end_s)] clipped to the audio."""
    out = []
    for c in chunks:
        text = str(c.get("text", "")).strip()
        start, end = c.get("timestamp", (None, None))
        if not text or start is None:
            continue
        end = duration if end is None else end
        s = min(max(float(start), 0.0), duration)
        e = min(max(float(end), s), duration)
        out.append((text, min(round(s, 4), duration), min(round(e, 4), duration)))
    return out


def transcribe_whisper(
    wav: np.ndarray,
    sr: int,
    model: str | os.PathLike,
    device: str | None = None,
    language: str | None = None,
    allow_download: bool | None = None,
) -> Transcript:
    """Whisper (Radford et al. 2022) through the transformers ASR pipeline; audio over 30 s is decoded
    sequentially window after window (Whisper long-form), which keeps the timestamps in order."""
    from a2v.audio.io import resample
    from a2v.encoders._hub import hub_offline, missing_weights, resolve_pretrained

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"Whisper expects a non-empty mono waveform (S,), got shape {x.shape}")
    duration = x.size / float(sr)
    x = resample(x, int(sr), _WHISPER_SR) if sr != _WHISPER_SR else x  # (S,)->(S16,)
    src = resolve_pretrained(model, "Whisper ASR", "asr.model", allow_download)
    local = Path(src).is_dir()
    if local:
        from a2v.encoders.speech import _check_weight_files

        _check_weight_files(Path(src), "Whisper ASR")
    try:
        pipe = _whisper_pipeline(src, device, local or hub_offline())
    except OSError as e:
        raise missing_weights("Whisper ASR", str(model), "asr.model") from e
    has_heads = getattr(pipe.model.generation_config, "alignment_heads", None) is not None
    kwargs: dict = {"return_timestamps": "word" if has_heads else True}
    if language:
        kwargs["generate_kwargs"] = {"language": language}
    out = pipe({"raw": x, "sampling_rate": _WHISPER_SR}, **kwargs)
    return Transcript(str(out.get("text", "")).strip(), _chunks_to_words(out.get("chunks") or [], duration))
