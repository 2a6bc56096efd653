"""Audio-visual sync from landmarks, without external weights: a linear audio -> lip-motion model.

Loudness alone cannot tell a talking head's own audio from another sentence or a shifted copy
(both have loud vowels every ~0.2 s). Here a ridge regression fitted on real talking faces (the
GRID corpus, Cooke et al. 2006, CC BY 4.0) predicts four lip signals per video frame from the
log-mel spectrogram around that frame (``context_frames`` frames each side):

- inner-lip gap and outer-lip height (both / inter-ocular distance) and their frame-to-frame
  velocities; each standardised per clip, so the measure ignores a speaker's mouth size.

The prediction is correlated with the lip signals measured on the video at every lag in
``+-search_frames``; the curve's mean over the four signals is the sync curve. As with SyncNet's
LSE-C (Chung & Zisserman 2016, "Out of time"), the score is a confidence: the best correlation
within ``+-window_frames`` of lag 0 minus the median over all searched lags. The lag of the
curve's maximum over the whole search is the estimated offset; a maximum at the end of the search
means the true offset may lie outside it (``offset_at_edge``).
Lag convention: a positive lag means the mouth moves ``lag`` frames after the sound.

The packaged model (``av_sync_grid.json``, ~1k floats: JSON like the rest of the package data)
is fitted on all 11 GRID clips by ``benchmarks/lipsync_av_sync.py``, which also measures the
ranking with leave-one-speaker-out models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from a2v.errors import InputError
from a2v.metrics.sync import mouth_opening, pearson_finite

DEFAULT_MODEL = Path(__file__).with_name("av_sync_grid.json")


@dataclass(frozen=True)
class AVSyncConfig:
    """Features and search of the landmark sync measure (chosen by leave-one-speaker-out on GRID)."""

    sr_hz: int = 16000
    n_mels: int = 24
    fmin_hz: float = 80.0
    fmax_hz: float = 7600.0
    floor_db: float = -60.0  # log-mel floor below each band's 95th percentile
    context_frames: int = 3  # video frames of audio each side of the predicted frame
    ridge: float = 30.0  # L2 penalty per 100 training frames (standardised features)
    window_frames: int = 2  # in-sync lags: |lag| <= this
    search_frames: int = 15  # lags searched for the offset and the median (0.6 s at 25 fps)


def lip_signals(landmarks: np.ndarray) -> np.ndarray:
    """Lip signals per frame, standardised per clip: landmarks float (F,68,2) px -> float64 (F,4).

    Columns: inner gap, outer height (lip points 51-57), and their velocities (np.gradient);
    all divided by the inter-ocular distance, then z-scored over the frames with a face (NaN rows
    stay NaN).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise InputError(f"lip signals expect landmarks (F,68,2), got {lm.shape}")
    iod = np.linalg.norm(lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1), axis=-1)  # (F,)
    inner = mouth_opening(lm).astype(np.float64)  # (F,)
    outer = np.linalg.norm(lm[:, 57] - lm[:, 51], axis=-1) / np.maximum(iod, 1e-9)  # (F,)
    cols = [inner, outer]
    cols += [np.gradient(c) if len(c) > 1 else np.zeros_like(c) for c in (inner, outer)]
    x = np.stack(cols, 1)  # (F,4)
    x[~np.isfinite(inner) | ~np.isfinite(outer)] = np.nan  # no face: no velocity either
    return (x - np.nanmean(x, 0)) / (np.nanstd(x, 0) + 1e-9)


def audio_features(wav: np.ndarray, sr: int, fps: float, n_frames: int, cfg: AVSyncConfig = AVSyncConfig()) -> np.ndarray:
    """Log-mel context per video frame: wav float (S,) at ``sr`` Hz -> float32 (F, (2c+1)(n_mels+1)).

    Each band in dB relative to its own 95th percentile over the clip (level- and channel-free),
    floored at ``floor_db``, averaged per video frame, plus the band mean; frames ``t-c..t+c``
    stacked (edge frames repeated).
    """
    from a2v.audio import align_features, resample
    from a2v.audio.features import log_mel

    x = np.asarray(wav, np.float32)
    if x.ndim != 1:
        raise InputError(f"sync audio must be mono (S,), got {x.shape}")
    if sr != cfg.sr_hz:
        x = resample(x, sr, cfg.sr_hz)  # (S,)->(S',)
    mel = log_mel(x, cfg.sr_hz, n_mels=cfg.n_mels, fmin_hz=cfg.fmin_hz, fmax_hz=cfg.fmax_hz)  # (T,M) 100 Hz
    v = align_features(mel, 100, fps, n_frames, mode="mean")  # (T,M)->(F,M)
    v = np.maximum(v - np.percentile(v, 95, axis=0), cfg.floor_db)  # (F,M)
    v = np.concatenate([v, v.mean(1, keepdims=True)], 1)  # (F,M+1)
    c = cfg.context_frames
    pad = np.pad(v, ((c, c), (0, 0)), mode="edge")  # (F+2c,M+1)
    return np.concatenate([pad[i : i + n_frames] for i in range(2 * c + 1)], 1).astype(np.float32)  # (F,(2c+1)(M+1))


@dataclass(frozen=True)
class AVSyncModel:
    """Ridge map from :func:`audio_features` to :func:`lip_signals`: (F,D) -> (F,4)."""

    mean: np.ndarray  # (D,) feature mean
    std: np.ndarray  # (D,) feature std
    weight: np.ndarray  # (D,4)
    cfg: AVSyncConfig = AVSyncConfig()

    def predict(self, wav: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
        """Predicted lip signals float64 (F,4) from mono audio (S,) at ``sr`` Hz."""
        x = audio_features(wav, sr, fps, n_frames, self.cfg)  # (F,D)
        return ((x - self.mean) / self.std) @ self.weight  # (F,D)@(D,4)->(F,4)

    @classmethod
    def fit(cls, clips: Sequence[tuple[np.ndarray, np.ndarray, int, float]], cfg: AVSyncConfig = AVSyncConfig()) -> AVSyncModel:
        """Fit on clips [(landmarks (F,68,2) px, mono wav (S,), sr Hz, fps)]; frames without a face are skipped."""
        xs, ys = [], []
        for lm, wav, sr, fps in clips:
            y = lip_signals(lm)  # (F,4)
            x = audio_features(wav, sr, fps, len(lm), cfg)  # (F,D)
            ok = np.isfinite(y).all(1)
            xs.append(x[ok])
            ys.append(y[ok])
        x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys)  # (N,D), (N,4)
        if len(x) < 10:
            raise InputError(f"sync model needs >= 10 frames with a face to fit, got {len(x)}")
        mu, sd = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sd  # (N,D)
        lam = cfg.ridge * len(z) / 100.0
        w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - y.mean(0)))  # (D,4)
        return cls(mu, sd, w, cfg)

    def save(self, path: str | Path) -> Path:
        from a2v.io import write_json_atomic

        """Write the model as JSON (config + mean, std, weight lists); returns the path."""
        write_json_atomic(Path(path), {"config": asdict(self.cfg), "mean": self.mean.tolist(),
                                       "std": self.std.tolist(), "weight": self.weight.tolist()})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> AVSyncModel:
        """Read a model written by :meth:`save` (default: the packaged GRID model)."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"sync model file {p} is missing; refit it with benchmarks/lipsync_av_sync.py")
        d = json.loads(p.read_text(encoding="utf-8"))
        try:
            cfg = AVSyncConfig(**d["config"])
            m = cls(np.asarray(d["mean"]), np.asarray(d["std"]), np.asarray(d["weight"]), cfg)
        except (KeyError, TypeError) as e:
            raise InputError(f"sync model file {p} lacks or mangles key {e}; refit it") from e
        if m.weight.shape != (m.mean.size, 4) or m.std.shape != m.mean.shape:
            raise InputError(f"sync model file {p}: weight {m.weight.shape} does not match mean {m.mean.shape}")
        return m


def sync_curve(observed: np.ndarray, predicted: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean Pearson correlation over signals at lags -max_lag..max_lag: (F,K), (F,K) -> float64 (2L+1,).

    Lag k pairs ``observed[t]`` with ``predicted[t - k]`` (k > 0: mouth after sound); NaN where
    fewer than 3 frames overlap.
    """
    o, p = np.asarray(observed, np.float64), np.asarray(predicted, np.float64)
    n = len(o)
    out = np.full(2 * max_lag + 1, np.nan)
    for i, k in enumerate(range(-max_lag, max_lag + 1)):
        a, b = (o[k:], p[: n - k]) if k >= 0 else (o[: n + k], p[-k:])  # (F-|k|,K) each
        rs = [pearson_finite(a[:, d], b[:, d]) for d in range(o.shape[1])]
        out[i] = np.nanmean(rs) if np.isfinite(rs).any() else np.nan
    return out


def av_sync(
    landmarks: np.ndarray, wav: np.ndarray, sr: int, fps: float, model: AVSyncModel | None = None
) -> dict:
    """Landmark sync of one clip: landmarks float (F,68,2) px (NaN rows: no face), mono wav (S,) at ``sr``.

    Returns {"av_sync_conf": in-window peak minus median over the search (higher = in sync; ~0
    for unrelated audio), "av_sync_corr": the in-window peak correlation, "av_offset_frames": lag of
    the maximum over +-search_frames, "av_offset_s", "av_offset_at_edge": that lag is the end
    of the search}. NaN values when fewer than 3 frames with a face overlap.
    """
    m = model if model is not None else AVSyncModel.load()
    cfg = m.cfg
    n = len(landmarks)
    obs = lip_signals(landmarks)  # (F,4)
    pred = m.predict(np.asarray(wav, np.float32), sr, fps, n)  # (F,4)
    L = min(cfg.search_frames, max(n - 3, 0))
    curve = sync_curve(obs, pred, L)  # (2L+1,)
    if not np.isfinite(curve).any():
        return {"av_sync_conf": float("nan"), "av_sync_corr": float("nan"), "av_offset_frames": 0,
                "av_offset_s": 0.0, "av_offset_at_edge": False}
    w = min(cfg.window_frames, L)
    peak = float(np.nanmax(curve[L - w : L + w + 1]))
    off = int(np.nanargmax(curve)) - L
    return {
        "av_sync_conf": peak - float(np.nanmedian(curve)),
        "av_sync_corr": peak,
        "av_offset_frames": off,
        "av_offset_s": off / fps,
        "av_offset_at_edge": bool(L > 0 and abs(off) == L),
    }


def shift_audio(wav: np.ndarray, sr: int, shift_s: float) -> np.ndarray:
    """Delay (``shift_s`` > 0) or advance mono audio (S,), zero-filled, same length (S,)."""
    k = int(round(abs(shift_s) * sr))
    x = np.asarray(wav, np.float32)
    if k == 0:
        return x.copy()
    z = np.zeros(min(k, len(x)), np.float32)
    return np.concatenate([z, x[: len(x) - len(z)]]) if shift_s > 0 else np.concatenate([x[len(z) :], z])


def leave_one_out_ranking(
    clips: dict[str, tuple[np.ndarray, np.ndarray, int, float]],
    cfg: AVSyncConfig = AVSyncConfig(),
    shift_s: float = 0.5,
) -> dict[str, dict]:
    """For each clip, with a model fitted on all OTHER clips: its own audio vs distractors.

    clips: {name: (landmarks (F,68,2), mono wav (S,), sr, fps)}, one speaker each (so leaving a
    clip out leaves its speaker out). Distractors: the own audio delayed and advanced by
    ``shift_s`` and every other clip's audio (cut or zero-padded to this clip's length).
    Returns {name: {"own": av_sync dict, "best_distractor": name, "best_distractor_conf",
    "margin": own conf minus the best distractor's, "own_ranks_first": bool}}.
    """
    out: dict[str, dict] = {}
    for name, (lm, wav, sr, fps) in clips.items():
        model = AVSyncModel.fit([c for k, c in clips.items() if k != name], cfg)
        own = av_sync(lm, wav, sr, fps, model)
        others = {f"own {s:+.1f} s": shift_audio(wav, sr, s) for s in (shift_s, -shift_s)}
        for k, (_, w2, sr2, _) in clips.items():
            if k != name:
                from a2v.audio import resample

                w2 = resample(w2, sr2, sr) if sr2 != sr else w2
                others[k] = np.pad(w2, (0, max(0, len(wav) - len(w2))))[: len(wav)]  # (S,)
        confs = {k: av_sync(lm, w, sr, fps, model)["av_sync_conf"] for k, w in others.items()}
        best = max(confs, key=lambda k: confs[k])
        out[name] = {"own": own, "best_distractor": best, "best_distractor_conf": confs[best],
                     "margin": own["av_sync_conf"] - confs[best],
                     "own_ranks_first": bool(own["av_sync_conf"] > confs[best])}
    return out
