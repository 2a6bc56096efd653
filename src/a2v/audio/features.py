"""Frame-level audio features with explicit rates: STFT, log-mel, MFCC, compressed STFT.

All functions take float32 (S,) samples and return float32 arrays whose first axis is time
at ``1000 / hop_ms`` Hz (100 Hz by default). Conventions match librosa so results can be
checked against it (librosa itself is a development-only reference):

* ``center=True`` (log-mel, MFCC): the signal is zero-padded by ``n_fft // 2`` on both sides
  and frame t is centred on sample ``t * hop``, giving ``T = 1 + S // hop`` frames.
* ``center=False`` (compressed STFT): frame t covers samples ``[t*hop, t*hop + win)``, giving
  ``T = 1 + (S - win) // hop`` frames (0 when S < win).
* The periodic Hann window of ``win`` samples is zero-padded to ``n_fft``: centred in the
  frame when ``center=True`` (librosa), at the frame start when ``center=False`` (TF
  ``tf.signal.stft``, as used for the Speech2Face-style input below).
"""

from __future__ import annotations

import functools

import numpy as np

MEL_BLOCK_FRAMES = 2048  # frames per block in mel_power (about 20 s at 100 Hz)


def _samples(ms: float, sr: int) -> int:
    return int(round(sr * ms / 1000.0))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _framed(
    wav: np.ndarray, sr: int, win_ms: float, hop_ms: float, n_fft: int | None, center: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames view (T,frame_len) of the padded signal, window (frame_len,), n_fft): no copy."""
    from scipy.signal import get_window

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"stft expects mono samples (S,), got shape {x.shape}")
    win, hop = _samples(win_ms, sr), _samples(hop_ms, sr)
    n_fft = n_fft or _next_pow2(win)
    if win > n_fft:
        raise ValueError(f"window ({win} samples) is longer than n_fft={n_fft}")
    window = np.zeros(n_fft, np.float32)
    offset = (n_fft - win) // 2 if center else 0
    window[offset : offset + win] = get_window("hann", win, fftbins=True)  # (win,)->(n_fft,)
    if center:
        x = np.pad(x, (n_fft // 2, n_fft // 2))  # (S,)->(S+n_fft,) zero padding (librosa default)
        frame_len = n_fft
    else:
        frame_len = win  # frames are win samples, zero-padded to n_fft by the FFT
        window = window[:win]
    if x.size < frame_len:
        return np.zeros((0, frame_len), np.float32), window, n_fft
    # Framing is two lines of numpy; scipy's ShortTimeFFT pads and places frames differently.
    frames = np.lib.stride_tricks.sliding_window_view(x, frame_len)[::hop]  # (S,)->(T,frame_len)
    return frames, window, n_fft


def stft(
    wav: np.ndarray,
    sr: int = 16000,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int | None = None,
    center: bool = True,
) -> np.ndarray:
    """Complex short-time Fourier transform with a periodic Hann window (no scaling).

    wav: float32 (S,) at ``sr`` Hz. ``n_fft`` defaults to the next power of two >= the window
    (512 for 25 ms at 16 kHz). Returns complex64 (T, n_fft // 2 + 1) at ``1000 / hop_ms`` Hz,
    T as in the module docstring.
    """
    frames, window, n_fft = _framed(wav, sr, win_ms, hop_ms, n_fft, center)  # (T,frame_len)
    spec = np.fft.rfft(frames * window, n=n_fft, axis=-1)  # (T,frame_len)->(T,n_fft//2+1)
    return spec.astype(np.complex64)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float, htk: bool) -> np.ndarray:
    """Triangular mel filters, float32 (n_fft // 2 + 1, n_mels), Slaney area normalisation.

    Slaney mel scale by default (librosa default), HTK scale when ``htk``.
    """
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=fmin_hz,
        max_frequency=fmax_hz, sampling_rate=sr, norm="slaney", mel_scale="htk" if htk else "slaney",
    )  # (n_fft//2+1, n_mels)
    fb = fb.astype(np.float32)
    fb.setflags(write=False)
    return fb


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float | None = None) -> np.ndarray:
    """``10 log10(max(power, amin))`` (reference 1.0), floored at ``max - top_db`` when given."""
    db = 10.0 * np.log10(np.maximum(power, amin))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - top_db)
    return db.astype(np.float32)


def mel_power(
    wav: np.ndarray,
    sr: int = 16000,
    n_mels: int = 80,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int | None = None,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """Mel power spectrogram |STFT|^2 @ filters: float32 (T, n_mels), T = 1 + S // hop.

    Computed in blocks of ``MEL_BLOCK_FRAMES`` frames, so the complex spectrum of a long
    recording is never held whole (memory stays flat for 10-minute inputs).
    """
    frames, window, n_fft = _framed(wav, sr, win_ms, hop_ms, n_fft, center=True)  # (T,n_fft)
    fb = mel_filterbank(sr, n_fft, n_mels, float(fmin_hz), float(fmax_hz or sr / 2), htk)  # (K,n_mels)
    out = np.empty((len(frames), n_mels), np.float32)
    for a in range(0, len(frames), MEL_BLOCK_FRAMES):
        spec = np.fft.rfft(frames[a : a + MEL_BLOCK_FRAMES] * window, n=n_fft, axis=-1)  # (b,n_fft)->(b,K)
        out[a : a + MEL_BLOCK_FRAMES] = (spec.real**2 + spec.imag**2) @ fb  # (b,K)->(b,n_mels)
    return out


def log_mel(
    wav: np.ndarray,
    sr: int = 16000,
    n_mels: int = 80,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int | None = None,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    top_db: float | None = None,
) -> np.ndarray:
    """Log-mel spectrogram in dB.

    wav: float32 (S,) in [-1, 1] at ``sr`` Hz. Returns float32 (T, n_mels) in dB (power,
    reference 1.0, floor -100 dB; also ``max - top_db`` when given) at ``1000 / hop_ms`` Hz
    (100 Hz by default) with ``T = 1 + S // hop`` (centred frames, zero padding). Equals
    ``librosa.power_to_db(librosa.feature.melspectrogram(..., center=True, pad_mode="constant"))``.
    """
    mel = mel_power(wav, sr, n_mels, win_ms, hop_ms, n_fft, fmin_hz, fmax_hz)  # (S,)->(T,n_mels)
    return power_to_db(mel, top_db=top_db)


def mfcc(
    wav: np.ndarray,
    sr: int = 16000,
    n_mfcc: int = 13,
    n_mels: int = 40,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int | None = None,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients (DCT-II, orthonormal, of the log-mel in dB).

    Defaults follow the lip-sync recipe: 13 coefficients, 25 ms window, 10 ms hop, i.e.
    100 Hz, exactly 4 frames per video frame at 25 fps.
    wav: float32 (S,) in [-1, 1] at ``sr`` Hz. Returns float32 (T, n_mfcc) at
    ``1000 / hop_ms`` Hz with ``T = 1 + S // hop`` (centred frames, zero padding). Equals
    ``librosa.feature.mfcc`` with the same settings (its default ``top_db=80``).
    """
    from scipy.fft import dct

    mel = mel_power(wav, sr, n_mels, win_ms, hop_ms, n_fft, fmin_hz, fmax_hz)  # (S,)->(T,n_mels)
    db = power_to_db(mel, top_db=top_db)  # (T,n_mels)
    return dct(db, type=2, norm="ortho", axis=-1)[:, :n_mfcc].astype(np.float32)  # (T,n_mels)->(T,n_mfcc)


def repeat_to_length(wav: np.ndarray, n_samples: int) -> np.ndarray:
    """Tile ``wav`` (S,) until it has ``n_samples`` samples, then cut from the start: (n_samples,)."""
    x = np.asarray(wav, dtype=np.float32)
    if x.size == 0:
        raise ValueError("cannot repeat an empty signal")
    reps = -(-n_samples // x.size)
    return np.tile(x, reps)[:n_samples]  # (S,)->(n_samples,)


def compressed_stft(
    wav: np.ndarray,
    sr: int = 16000,
    duration_s: float | None = 6.0,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int = 512,
    power: float = 0.3,
) -> np.ndarray:
    """Power-law compressed complex spectrogram, real and imaginary parts as 2 channels.

    Speech-to-face input (Speech2Face, Oh et al. 2019, Sec. 3; "Speech-to-Face Conversion
    Using DDPM"): the clip is repeated until it lasts ``duration_s`` and cut to that duration
    from the start (``None`` keeps its length); STFT with a 25 ms periodic Hann window, 10 ms
    hop, ``n_fft=512`` and uncentred frames; each of real and imaginary parts is compressed
    as ``sign(x) |x|^power`` (power 0.3).

    wav: float32 (S,) in [-1, 1] at ``sr`` Hz. Returns float32 (2, T, n_fft // 2 + 1) =
    (C, T, D), channel 0 real, 1 imaginary, at ``1000 / hop_ms`` Hz with
    ``T = 1 + (N - win) // hop`` for ``N = round(duration_s * sr)`` samples: 598 x 257 for 6 s
    at 16 kHz.
    """
    x = np.asarray(wav, dtype=np.float32)
    if duration_s is not None:
        x = repeat_to_length(x, int(round(duration_s * sr)))  # (S,)->(N,)
    spec = stft(x, sr, win_ms, hop_ms, n_fft, center=False)  # (N,)->(T,D) complex
    parts = np.stack([spec.real, spec.imag])  # (T,D)->(2,T,D)
    return (np.sign(parts) * np.abs(parts) ** power).astype(np.float32)  # Speech2Face power-law compression
