"""``a2v demo``: a talking photo made offline from nothing but the installed packages.

Speech is synthesised with eSpeak NG, the face is scikit-image's public-domain astronaut photo
(Eileen Collins, NASA), and :func:`a2v.recipes.lipsync.driven.generate.generate_driven` animates it
(no training, no downloaded weights). The output is then checked the way ``a2v lipsync evaluate``
checks any video: landmarks are detected on the written frames and the mouth opening is correlated
with the audio loudness. Files written to ``output_dir``:

- ``demo.mp4``: the talking photo (H.264 + AAC), ``demo_speech.wav``, ``demo_face.png`` (inputs);
- ``demo_report.json``: settings, timings, phones, blinks and the measured sync;
- ``demo_frames.png``: a contact sheet of face crops; ``demo_sync.png``: mouth opening vs loudness.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEMO_TEXT = "Hello, I am a talking photo. My lips and jaw follow every word you hear."
SR = 16000


def _contact_sheet(
    frames: list[np.ndarray], labels: list[str], box: np.ndarray, tile_px: int = 192
) -> np.ndarray:
    """Face crops of a few frames side by side: uint8 (tile_px+20, N*tile_px, 3)."""
    import cv2

    from a2v.face import CropTransform

    crop = CropTransform.from_box(box, frames[0].shape[:2], size_px=tile_px, margin_frac=0.2)
    tiles = []
    for f, text in zip(frames, labels, strict=True):
        t = np.full((tile_px + 20, tile_px, 3), 255, np.uint8)  # (h,w,3) white label strip at the bottom
        t[:tile_px] = crop.apply(f)
        cv2.putText(t, text, (4, tile_px + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(t)
    return np.concatenate(tiles, axis=1)  # N x (h,w,3) -> (h,N*w,3)


def _sync_plot(
    path: Path, opening: np.ndarray, loud_db: np.ndarray, fps: float, corr: float, lag: int
) -> None:
    """Line plot of mouth opening (measured on the video) and loudness over time -> PNG (atomic)."""
    from matplotlib.figure import Figure

    from a2v.io import atomic_path

    t = np.arange(len(opening)) / fps  # (F,) s
    fig = Figure(figsize=(8, 2.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, opening, color="tab:red", label="mouth opening (inner-lip gap / eye distance)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(t, loud_db, color="tab:blue", alpha=0.6, label="audio loudness (dB re max)")
    ax2.set_ylabel("loudness (dB)", color="tab:blue")
    ax.set_title(f"measured on demo.mp4: correlation {corr:.2f} at lag {lag} frames", fontsize=10)
    fig.legend(loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")


def run_demo(
    output_dir: str | Path, *, progress: bool = True, text: str = DEMO_TEXT, measure: bool = True
) -> dict:
    """Make the demo talking photo in ``output_dir``; returns the report (also written as JSON).

    text: what the astronaut says (English; eSpeak NG voice "en"). measure: detect landmarks on
    the written video and report the mouth-opening / loudness correlation (adds a few seconds).
    """
    from a2v.audio import save_audio, synthesize_speech
    from a2v.cliutil import console
    from a2v.io import write_json_atomic
    from a2v.metrics.sync import (
        loudness_envelope,
        mouth_opening,
        shuffled_baseline,
        sync_correlation,
        video_landmarks,
    )
    from a2v.recipes.lipsync.driven.generate import generate_driven
    from a2v.video import read_frames, write_png

    try:
        from skimage import data as skdata
    except ImportError as e:
        from a2v.errors import missing_package

        raise missing_package("scikit-image", "face", "the demo photo") from e

    t0 = time.perf_counter()
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wav = synthesize_speech(text, sr=SR)  # (S,) 16 kHz
    save_audio(out_dir / "demo_speech.wav", wav, SR)
    face_png = write_png(out_dir / "demo_face.png", skdata.astronaut())  # (512,512,3)
    video = out_dir / "demo.mp4"
    report = generate_driven(face_png, (wav, SR), video, transcript=text, progress=progress)
    report.update(
        text=text, speech="eSpeak NG (voice en)", photo="scikit-image astronaut (public domain, NASA)"
    )
    fps = float(report["fps"])
    if measure:
        t1 = time.perf_counter()
        lm, _ = video_landmarks(
            video, detector="dlib_hog", detect_every_frames=10, progress=progress
        )  # (F,68,2) on the output
        opening = mouth_opening(lm)  # (F,)
        loud = loudness_envelope(wav, SR, fps, len(opening))  # (F,)
        corr, lag = sync_correlation(opening, loud, max_lag_frames=5)
        from a2v.metrics.av_sync import av_sync, shift_audio

        av = av_sync(lm, wav, SR, fps)  # landmark sync measure (GRID-fitted model)
        report["measured"] = {
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in av.items()},
            "av_sync_conf_audio_shifted_0.5s": round(av_sync(lm, shift_audio(wav, SR, 0.5), SR, fps)["av_sync_conf"], 3),
            "sync_corr": round(corr, 3),
            "sync_lag_frames": lag,
            "shuffled_audio_corr": round(shuffled_baseline(opening, loud, 5), 3),
            "face_frames": int(np.isfinite(lm[:, 0, 0]).sum()),
            "seconds": round(time.perf_counter() - t1, 2),
        }
        _sync_plot(out_dir / "demo_sync.png", opening, loud, fps, corr, lag)
        picks = np.linspace(0, len(opening) - 1, 8).round().astype(int)
        valid = np.isfinite(opening)
        if valid.any():  # show the widest opening too
            picks[-2] = int(np.nanargmax(np.where(valid, opening, -1)))
        picks = np.unique(picks)
        frames = [f for i, f in enumerate(read_frames(video)) if i in set(picks.tolist())]
        labels = [f"t={i / fps:.2f}s" for i in picks]
        sheet = _contact_sheet(frames, labels, np.asarray(report["face_box"]))
        write_png(out_dir / "demo_frames.png", sheet)
    report["seconds"]["demo_total_s"] = round(time.perf_counter() - t0, 2)
    write_json_atomic(out_dir / "demo_report.json", report)
    m = report.get("measured", {})
    console.print(
        f"demo: {video} ({report['frames']} frames, {report['duration_s']:.1f} s, mode {report['mode']}, "
        f"{report['blinks']} blinks) in {report['seconds']['demo_total_s']:.0f} s"
        + (f"; sync confidence {m['av_sync_conf']:.2f} (audio shifted 0.5 s: {m['av_sync_conf_audio_shifted_0.5s']:.2f}), "
           f"loudness r={m['sync_corr']:.2f} (shuffled audio {m['shuffled_audio_corr']:.2f})" if m else "")
    )
    return report
