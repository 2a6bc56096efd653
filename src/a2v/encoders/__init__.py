"""Thin adapters over pretrained models: SSL speech encoders, BERT-family text encoders, ASR, spoken-language
identification (Whisper), feature cache.

Weights are never downloaded implicitly on an offline machine: a model is a local folder or
a hub id found in the Hugging Face cache, else :class:`a2v.errors.MissingWeightsError`.
"""

from a2v.encoders._hub import DEFAULT_MODELS, available_weights
from a2v.encoders.asr import Transcript, transcribe
from a2v.encoders.cache import FeatureCache
from a2v.encoders.langid import LanguageId, identify_language
from a2v.encoders.speech import SpeechEncoder, num_frames
from a2v.encoders.sphinx import align_words, phoneme_segments
from a2v.encoders.text import TextEncoder

__all__ = [
    "DEFAULT_MODELS",
    "FeatureCache",
    "LanguageId",
    "SpeechEncoder",
    "TextEncoder",
    "Transcript",
    "align_words",
    "available_weights",
    "identify_language",
    "num_frames",
    "phoneme_segments",
    "transcribe",
]
