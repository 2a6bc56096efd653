"""Audio core: decode/resample/save, frame-level features with explicit rates, alignment
of audio-rate sequences to video frame rates, and offline speech synthesis.

``load_audio`` -> float32 (S,) in [-1, 1] at 16 kHz; ``mfcc``/``log_mel`` -> float32 (T, D)
at 100 Hz (``T = 1 + S // 160``); ``compressed_stft`` -> float32 (2, T, 257), 598 x 257 for 6 s;
``align_features`` -> (F, D) at the video fps with ``F = num_video_frames(S, sr, fps)``.
"""

from a2v.audio.align import (
    align_features,
    envelope,
    feature_window,
    frame_boundaries,
    frames_per_video_frame,
    frames_per_window,
    num_video_frames,
)
from a2v.audio.features import (
    compressed_stft,
    log_mel,
    mel_filterbank,
    mfcc,
    power_to_db,
    repeat_to_length,
    stft,
)
from a2v.audio.io import is_silent, load_audio, resample, save_audio
from a2v.audio.tts import synthesize_speech

__all__ = [
    "align_features",
    "compressed_stft",
    "envelope",
    "feature_window",
    "frame_boundaries",
    "frames_per_video_frame",
    "frames_per_window",
    "is_silent",
    "load_audio",
    "log_mel",
    "mel_filterbank",
    "mfcc",
    "num_video_frames",
    "power_to_db",
    "repeat_to_length",
    "resample",
    "save_audio",
    "stft",
    "synthesize_speech",
]
