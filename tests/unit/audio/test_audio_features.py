"""Features against librosa (dev-only reference) and scipy, plus closed-form shapes."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal

from a2v.audio import compressed_stft, log_mel, mfcc, repeat_to_length, stft

SR = 16000


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Chirp plus noise with a silent gap: exercises every band and the dB floor."""
    t = np.arange(int(seconds * SR)) / SR
    x = 0.5 * scipy.signal.chirp(t, f0=80, t1=t[-1], f1=7000) + 0.05 * np.random.default_rng(seed).standard_normal(t.size)
    x[int(0.2 * SR) : int(0.3 * SR)] = 0.0
    return x.astype(np.float32)


@pytest.mark.parametrize("n_samples", [16000, 16001, 16159, 8000 + 80])
def test_mfcc_matches_librosa(n_samples: int) -> None:
    x = _signal(1.1)[:n_samples]
    ours = mfcc(x, SR)
    ref = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=13, n_fft=512, win_length=400, hop_length=160,
                               window="hann", center=True, pad_mode="constant", n_mels=40).T
    assert ours.dtype == np.float32
    assert ours.shape == (1 + n_samples // 160, 13)  # T = 1 + S // hop, 100 Hz
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)


def test_mfcc_matches_librosa_other_settings() -> None:
    x = _signal(0.7, seed=1)
    ours = mfcc(x, SR, n_mfcc=20, n_mels=64, win_ms=20.0, hop_ms=5.0, n_fft=400, fmin_hz=50.0, fmax_hz=7600.0, top_db=None)
    mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=400, win_length=320, hop_length=80, center=True,
                                         pad_mode="constant", n_mels=64, fmin=50.0, fmax=7600.0)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=20).T
    assert ours.shape == (1 + x.size // 80, 20)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("n_mels,top_db", [(80, None), (40, 80.0)])
def test_log_mel_matches_librosa(n_mels: int, top_db: float | None) -> None:
    x = _signal(1.0, seed=2)
    ours = log_mel(x, SR, n_mels=n_mels, top_db=top_db)
    mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=512, win_length=400, hop_length=160, center=True,
                                         pad_mode="constant", n_mels=n_mels, power=2.0)
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=top_db).T
    assert ours.shape == (1 + x.size // 160, n_mels)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_silence_hits_the_db_floor() -> None:
    out = log_mel(np.zeros(1600, np.float32), SR)
    assert out.shape == (11, 80)
    np.testing.assert_allclose(out, -100.0)


def test_stft_uncentred_matches_scipy() -> None:
    x = _signal(0.5, seed=3)
    ours = stft(x, SR, center=False)  # 400-sample frames, FFT 512
    _, _, ref = scipy.signal.stft(x.astype(np.float64), fs=SR, window="hann", nperseg=400, noverlap=240, nfft=512,
                                  boundary=None, padded=False, detrend=False)
    ref = ref.T * scipy.signal.get_window("hann", 400).sum()  # undo scipy's 1/sum(window) scaling
    assert ours.shape == (1 + (x.size - 400) // 160, 257)
    np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())


def test_compressed_stft_shape_and_values() -> None:
    x = _signal(2.5, seed=4)  # shorter than 6 s: repeated, then cut at 6 s
    out = compressed_stft(x, SR)
    assert out.dtype == np.float32
    assert out.shape == (2, 598, 257)  # 1 + (96000 - 400) // 160 = 598 frames, 512 // 2 + 1 bins
    tiled = np.concatenate([x, x, x])[:96000]
    _, _, ref = scipy.signal.stft(tiled.astype(np.float64), fs=SR, window="hann", nperseg=400, noverlap=240, nfft=512,
                                  boundary=None, padded=False, detrend=False)
    ref = ref.T * scipy.signal.get_window("hann", 400).sum()  # (T,D) complex
    # Undo the power-law compression sign(x)|x|^0.3 and compare with the linear STFT.
    lin = np.sign(out) * np.abs(out).astype(np.float64) ** (1 / 0.3)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(lin[0], ref.real, atol=1e-3 * scale)
    np.testing.assert_allclose(lin[1], ref.imag, atol=1e-3 * scale)
    # The compression itself, closed form on our own STFT.
    spec = stft(tiled, SR, center=False)
    np.testing.assert_allclose(out[0], np.sign(spec.real) * np.abs(spec.real) ** 0.3, rtol=1e-5, atol=1e-6)


def test_compressed_stft_cuts_long_audio_from_start_and_keeps_length_when_asked() -> None:
    x = _signal(7.0, seed=5)
    np.testing.assert_array_equal(compressed_stft(x, SR), compressed_stft(x[:96000], SR))
    free = compressed_stft(x[:32000], SR, duration_s=None)
    assert free.shape == (2, 1 + (32000 - 400) // 160, 257)


def test_repeat_to_length() -> None:
    np.testing.assert_array_equal(repeat_to_length(np.array([1, 2, 3], np.float32), 7), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(repeat_to_length(np.arange(10, dtype=np.float32), 4), [0, 1, 2, 3])
    with pytest.raises(ValueError):
        repeat_to_length(np.zeros(0, np.float32), 4)


def test_short_input_gives_zero_frames_uncentred() -> None:
    assert stft(np.zeros(100, np.float32), SR, center=False).shape == (0, 257)
    assert mfcc(np.zeros(100, np.float32), SR).shape == (1, 13)  # centred: 1 + 100 // 160


def test_mel_power_in_blocks_equals_one_pass(monkeypatch):
    import a2v.audio.features as feat

    rng = np.random.default_rng(3)
    wav = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)  # 301 frames
    monkeypatch.setattr(feat, "MEL_BLOCK_FRAMES", 64)  # 5 blocks, the last one partial
    fb = feat.mel_filterbank(16000, 512, 40, 0.0, 8000.0, False)
    ref = (np.abs(feat.stft(wav, 16000)) ** 2) @ fb  # (T,K)->(T,40) whole spectrum at once
    got = feat.mel_power(wav, 16000, n_mels=40)
    assert got.shape == (301, 40)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-7)
