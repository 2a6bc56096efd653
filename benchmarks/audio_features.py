"""Speed of a2v.audio decoding and features, with librosa as the yardstick (dev-only).

Synthesises ``--seconds`` of noise-plus-tone at 44.1 kHz stereo, writes it as wav and mp3,
times ``load_audio`` (decode + mono + resample to 16 kHz) and, on the 16 kHz signal,
``mfcc``, ``log_mel``, ``compressed_stft`` (6 s) and ``align_features``; the best of
``--repeat`` runs is kept. Result: benchmarks/results/audio_features.json.

    python benchmarks/audio_features.py [--seconds 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "audio_features.json"


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import soundfile as sf

    from a2v.audio import align_features, compressed_stft, load_audio, log_mel, mfcc
    from a2v.io import write_json_atomic

    rng = np.random.default_rng(0)
    n = int(args.seconds * 44100)
    t = np.arange(n) / 44100
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)
    stereo = np.stack([x, 0.5 * x], axis=1).astype(np.float32)  # (S,2)
    res: dict[str, object] = {"seconds_of_audio": args.seconds, "repeat": args.repeat,
                              "python": platform.python_version(), "machine": platform.machine()}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wav_path, mp3_path = Path(tmp) / "a.wav", Path(tmp) / "a.mp3"
        sf.write(wav_path, stereo, 44100)
        sf.write(mp3_path, stereo, 44100, subtype="MPEG_LAYER_III")
        timings["load_audio_wav"] = _best(lambda: load_audio(wav_path), args.repeat)
        timings["load_audio_mp3"] = _best(lambda: load_audio(mp3_path), args.repeat)
        wav16 = load_audio(wav_path)
    timings["mfcc"] = _best(lambda: mfcc(wav16), args.repeat)
    timings["log_mel"] = _best(lambda: log_mel(wav16), args.repeat)
    timings["compressed_stft_6s"] = _best(lambda: compressed_stft(wav16[:96000]), args.repeat)
    feats = mfcc(wav16)
    timings["align_features_mean"] = _best(lambda: align_features(feats, 100, 25, int(args.seconds * 25), "mean"), args.repeat)
    try:
        import librosa

        timings["librosa_mfcc"] = _best(lambda: librosa.feature.mfcc(
            y=wav16, sr=16000, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40,
            center=True, pad_mode="constant"), args.repeat)
    except ImportError:
        pass
    res["best_seconds"] = timings
    res["realtime_factor_mfcc"] = args.seconds / timings["mfcc"]
    write_json_atomic(RESULTS, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
