"""Audio-visual sync without external weights: mouth opening vs loudness over time.

A talking face opens its mouth when the voice is loud (open vowels are the loudest sounds), so
the inner-lip gap and the audio loudness envelope correlate, with the best match at a small lag.
:func:`measure_video_sync` detects landmarks on a video's own frames (the output of a
generator, or ground truth run through the same code), takes the mouth opening per frame and
reports the Pearson correlation with the audio envelope at the best lag within
``+-max_lag_frames`` (and that lag). Loudness is taken in dB, floored ``floor_db`` below the
loudest frame, which is closer to linear in mouth opening than raw RMS.
Lag convention: a positive lag means the mouth moves ``lag`` frames after the sound.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from a2v.errors import InputError
from a2v.face.landmarks import inter_ocular_px

INNER_PAIRS = ((61, 67), (62, 66), (63, 65))  # facing upper / lower inner-lip points (68-point layout)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap normalised by face size: landmarks float (F,68,2) px -> float32 (F,).

    Mean distance of the three facing inner-lip point pairs divided by the inter-ocular distance
    (0 = lips together, ~0.4 = a wide /a/). NaN rows (no face) stay NaN.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise InputError(f"mouth opening expects landmarks (F,68,2), got {lm.shape}")
    up = lm[:, [a for a, _ in INNER_PAIRS]]  # (F,3,2)
    lo = lm[:, [b for _, b in INNER_PAIRS]]  # (F,3,2)
    gap = np.linalg.norm(lo - up, axis=-1).mean(-1)  # (F,3)->(F,)
    return (gap / np.maximum(inter_ocular_px(lm), 1e-9)).astype(np.float32)


def loudness_envelope(
    wav: np.ndarray, sr: int, fps: float, n_frames: int, floor_db: float = -50.0
) -> np.ndarray:
    """Loudness per video frame for sync checks: float32 (F,) dB re the loudest frame, in [floor_db, 0]."""
    from a2v.audio import envelope

    db = envelope(np.asarray(wav, np.float32), sr, fps, n_frames, db=True)  # (S,)->(F,) dBFS
    return np.clip(db - (db.max() if db.size else 0.0), floor_db, 0.0).astype(np.float32)


def pearson_finite(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of ``a`` and ``b`` (same shape) over the places both are finite; NaN under 3 such places or
    with no spread."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def sync_correlation(opening: np.ndarray, envelope: np.ndarray, max_lag_frames: int = 5) -> tuple[float, int]:
    """Best Pearson correlation of ``opening`` (F,) and ``envelope`` (F,) over lags.

    Lag ``k`` pairs ``opening[t]`` with ``envelope[t - k]`` (k > 0: mouth after sound), for k in
    ``[-max_lag_frames, max_lag_frames]``. NaN entries (frames without a face) are skipped.
    Returns (best correlation in [-1, 1], its lag in frames); (nan, 0) when no lag has >= 3
    valid pairs or one signal is constant. The maximum over lags is biased upward for unrelated
    signals (about +0.1..0.2 for a few seconds at 25 fps); compare with shuffled audio.
    """
    o = np.asarray(opening, np.float64).ravel()
    e = np.asarray(envelope, np.float64).ravel()
    if o.shape != e.shape:
        raise InputError(f"opening {o.shape} and envelope {e.shape} must have one value per frame")
    best, best_lag = float("nan"), 0
    for k in range(-int(max_lag_frames), int(max_lag_frames) + 1):
        if k >= 0:
            r = pearson_finite(o[k:], e[: len(e) - k])
        else:
            r = pearson_finite(o[: len(o) + k], e[-k:])
        if np.isfinite(r) and (not np.isfinite(best) or r > best):
            best, best_lag = r, k
    return best, best_lag


def video_landmarks(
    video_path: str | Path,
    *,
    detector: str | object = "mtcnn",
    detect_every_frames: int = 5,
    min_face_px: float = 40.0,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """68 landmarks on every frame of a video: (float32 (F,68,2) px with NaN rows where no face, fps).

    Faces are detected every ``detect_every_frames`` frames (boxes interpolated between, the
    largest face kept, :func:`a2v.face.track_speaker`) and landmarks fitted on every frame.
    ``detector`` is a name for :func:`a2v.face.make_detector` or a detector object.
    """
    from a2v.face import DlibLandmarker, TrackConfig, make_detector, track_speaker
    from a2v.video import probe, read_frames

    info = probe(video_path)
    det = (
        make_detector(detector, device=device, min_size_px=min(20.0, min_face_px))
        if isinstance(detector, str)
        else detector
    )
    cfg = TrackConfig(detect_every_frames=detect_every_frames, min_face_px=min_face_px)
    track = track_speaker(read_frames(video_path), det, cfg, progress=progress)
    lmk = DlibLandmarker()
    lm = np.full((track.n_frames, 68, 2), np.nan, np.float32)  # (F,68,2)
    for i, frame in enumerate(read_frames(video_path)):
        if i >= track.n_frames:
            break
        if track.has_face[i]:
            lm[i] = lmk(frame, track.boxes[i])
    return lm, float(info.fps)


def measure_video_sync(
    video_path: str | Path,
    audio: str | Path | tuple[np.ndarray, int] | None = None,
    *,
    max_lag_frames: int = 5,
    detector: str | object = "mtcnn",
    detect_every_frames: int = 5,
    device: str = "cpu",
    progress: bool = True,
    av_model: object | None = None,
) -> dict:
    """Sync of a talking-face video: the landmark model (:mod:`a2v.metrics.av_sync`) and loudness.

    video_path: the video to judge (landmarks are detected on ITS frames).
    audio: None = the video's own audio track; a file path; or (float32 (S,), sr) samples.
    av_model: an :class:`a2v.metrics.av_sync.AVSyncModel` (default: the packaged GRID model).
    Returns {"av_sync_conf", "av_sync_corr", "av_offset_frames", "av_offset_s", "av_offset_at_edge"
    (the measure that tells own audio from shifted or other audio, see :func:`a2v.metrics.av_sync.av_sync`),
    "sync_corr", "sync_lag_frames", "sync_lag_s", "sync_lag_at_edge" (loudness correlation: weak,
    kept for comparison), "fps", "n_frames", "n_face_frames", "mean_opening"}.
    Raises InputError when the video has no audio (and none is given), silent audio, or no
    frame with a face.
    """
    from a2v.audio import is_silent, load_audio
    from a2v.metrics.av_sync import AVSyncModel, av_sync

    model = av_model if av_model is not None else AVSyncModel.load()
    if isinstance(audio, tuple):
        wav, sr = np.asarray(audio[0], np.float32), int(audio[1])
    else:
        sr = 16000
        wav = load_audio(video_path if audio is None else audio, sr=sr)
    if is_silent(wav, sr=sr):
        raise InputError(f"the audio of {audio if isinstance(audio, str | Path) else video_path} is silent: "
                         "no speech to measure lip sync against")
    lm, fps = video_landmarks(
        video_path,
        detector=detector,
        detect_every_frames=detect_every_frames,
        device=device,
        progress=progress,
    )
    n = len(lm)
    has = ~np.isnan(lm[:, 0, 0])
    if not has.any():
        raise InputError(f"no face found in any frame of {video_path}; cannot measure lip sync")
    opening = mouth_opening(lm)  # (F,)
    env = loudness_envelope(wav, sr, fps, n)  # (F,)
    corr, lag = sync_correlation(opening, env, max_lag_frames)
    return {
        **av_sync(lm, wav, sr, fps, model),
        "sync_corr": corr,
        "sync_lag_frames": lag,
        "sync_lag_s": lag / fps,
        "sync_lag_at_edge": bool(max_lag_frames > 0 and abs(lag) == max_lag_frames),
        "fps": fps,
        "n_frames": n,
        "n_face_frames": int(has.sum()),
        "mean_opening": float(np.nanmean(opening)),
    }


def shuffled_baseline(
    opening: np.ndarray,
    envelope: np.ndarray,
    max_lag_frames: int = 5,
    segment_frames: int = 10,
    seeds: Sequence[int] = (0, 1, 2),
) -> float:
    """Mean best-lag correlation after permuting ``envelope`` in blocks of ``segment_frames``.

    The chance level of :func:`sync_correlation` for this clip: same signals, timing destroyed.
    """
    e = np.asarray(envelope, np.float64)
    n = len(e)
    blocks = [e[i : i + segment_frames] for i in range(0, n, segment_frames)]
    vals = []
    for s in seeds:
        order = np.random.default_rng(s).permutation(len(blocks))
        shuf = np.concatenate([blocks[j] for j in order])  # (F,)
        vals.append(sync_correlation(opening, shuf, max_lag_frames)[0])
    return float(np.nanmean(vals))
