"""Landmark sync measure on the GRID clips: leave-one-speaker-out ranking, then the packaged model.

For each of the GRID clips (one speaker each) a model fitted on the other clips scores the clip's
own audio against its audio shifted by +-0.5 s and every other clip's audio
(:func:`a2v.metrics.av_sync.leave_one_out_ranking`). Then the model on all clips is written to
``src/a2v/metrics/av_sync_grid.json``. The loudness correlation (:func:`a2v.metrics.sync.sync_correlation`)
is ranked the same way for comparison.

Usage: .venv/bin/python benchmarks/lipsync_av_sync.py [GRID_DIR]
  -> benchmarks/results/lipsync_av_sync.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from a2v.audio import load_audio
from a2v.io import write_json_atomic
from a2v.metrics.av_sync import DEFAULT_MODEL, AVSyncModel, leave_one_out_ranking, shift_audio
from a2v.metrics.sync import loudness_envelope, mouth_opening, sync_correlation, video_landmarks

SR = 16000


def loudness_ranking(clips: dict) -> dict[str, bool]:
    """Own audio vs the same distractors with the loudness correlation (best lag +-5 frames)."""
    res = {}
    for name, (lm, wav, sr, fps) in clips.items():
        o = mouth_opening(lm)
        others = [shift_audio(wav, sr, 0.5), shift_audio(wav, sr, -0.5)]
        others += [np.pad(c[1], (0, max(0, len(wav) - len(c[1]))))[: len(wav)] for k, c in clips.items() if k != name]
        s = [sync_correlation(o, loudness_envelope(w, sr, fps, len(o)), 5)[0] for w in [wav, *others]]
        res[name] = bool(s[0] > max(s[1:]))
    return res


def main(grid: Path) -> None:
    clips = {}
    for p in sorted(grid.glob("*.mpg")):
        lm, fps = video_landmarks(p, detector="dlib_hog", progress=False)  # (F,68,2)
        clips[p.stem] = (lm, load_audio(p, sr=SR), SR, fps)
    rank = leave_one_out_ranking(clips)
    loud = loudness_ranking(clips)
    for k, r in rank.items():
        print(f"{k:16s} own conf {r['own']['av_sync_conf']:.3f} offset {r['own']['av_offset_frames']:+d} | "
              f"best distractor {r['best_distractor']} {r['best_distractor_conf']:.3f} | margin {r['margin']:+.3f}")
    margins = [r["margin"] for r in rank.values()]
    summary = {"clips": len(rank), "own_ranks_first": sum(r["own_ranks_first"] for r in rank.values()),
               "min_margin": min(margins), "mean_margin": float(np.mean(margins)),
               "mean_own_conf": float(np.mean([r["own"]["av_sync_conf"] for r in rank.values()])),
               "loudness_own_ranks_first": sum(loud.values())}
    print(summary)
    write_json_atomic(Path(__file__).parent / "results" / "lipsync_av_sync.json",
                      {"summary": summary, "per_clip": rank, "loudness_own_ranks_first": loud})
    AVSyncModel.fit(list(clips.values())).save(DEFAULT_MODEL)
    print(f"wrote {DEFAULT_MODEL}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data/grid"))
