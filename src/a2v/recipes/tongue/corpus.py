"""Corpus layout of the tongue recipe: which files are recordings, item names, speakers, held-out splits, language.

UltraSuite and TaL keep one folder per speaker and reuse file names in every folder
(``01M/000_xaud.ult``, ``02F/000_xaud.ult``), ship lip-camera videos (``*_lips.mp4``) beside the
ultrasound, and may hold a ``.wav``/``.param`` whose ``.ult`` is missing. Items are therefore
named by their path relative to the input folder, the speaker is the item's folder, and every
file not taken is listed with the reason. See :mod:`a2v.recipes.tongue.data` for the reading.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from a2v.errors import InputError
from a2v.recipes.tongue.config import DataConfig

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".m4v")
LIPS_SUFFIX = "_lips"  # TaL lip-camera videos: name_lips.mp4

__all__ = ["VIDEO_SUFFIXES", "scan_inputs", "find_inputs", "speaker_of", "split_names", "split_for",
           "transcript_language", "corpus_language"]


def speaker_of(name: str) -> str:
    """Speaker of an item name: its folder (``"01M/000_xaud"`` -> ``"01M"``), ``""`` when it has none."""
    return name.rsplit("/", 1)[0] if "/" in name else ""


def scan_inputs(paths: list[Path], videos: str = "auto") -> tuple[list[tuple[Path, str]], list[dict[str, str]]]:
    """Recordings under ``paths`` (files or folders) with their item names, and the files not taken.

    Returns ``([(file, name)], [{"path", "reason"}])``, both sorted by path. Names are the paths
    relative to their input folder without the suffix (see the module docstring); two inputs
    with the same name are an InputError (one item would overwrite the other).
    """
    roots = [Path(p) for p in paths]
    for p in roots:
        if not p.exists():
            raise InputError(f"input not found: {p}")
    prefix = sum(p.is_dir() for p in roots) > 1
    found: dict[Path, str] = {}
    for root in roots:
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            rel = f.relative_to(root) if root.is_dir() else Path(f.name)
            name = rel.with_suffix("").as_posix()
            found[f] = f"{root.name}/{name}" if prefix and root.is_dir() else name
    ult_stems = {f.with_suffix("") for f in found if f.suffix.lower() == ".ult"}
    vid_stems = {f.with_suffix("") for f in found if f.suffix.lower() in VIDEO_SUFFIXES}
    take_videos = videos == "ultrasound" or (videos == "auto" and not ult_stems)
    items, skipped = [], []
    for f, name in sorted(found.items()):
        suf = f.suffix.lower()
        if suf == ".ult":
            items.append((f, name))
        elif suf in VIDEO_SUFFIXES:
            if f.stem.lower().endswith(LIPS_SUFFIX) and videos != "ultrasound":
                skipped.append({"path": str(f), "reason": "TaL lip video (not ultrasound)"})
            elif take_videos:
                items.append((f, name))
            else:
                why = "data.videos=ignore" if videos == "ignore" else "videos beside .ult recordings are not taken"
                skipped.append({"path": str(f), "reason": f"{why}; set data.videos=ultrasound to use it as UTI"})
        elif suf in (".wav", ".param") and f.with_suffix("") not in ult_stems | vid_stems:
            skipped.append({"path": str(f), "reason": f"no {f.stem}.ult beside it (UltraSuite/TaL need .ult + .param "
                                                      f"+ .wav)"})
    by_name: dict[str, Path] = {}
    for f, name in items:
        if name in by_name:
            raise InputError(f"{by_name[name]} and {f} give the same item name {name!r}: prepare them separately")
        by_name[name] = f
    return items, skipped


def find_inputs(paths: list[Path], videos: str = "auto") -> list[Path]:
    """``.ult`` files and ultrasound videos under ``paths`` (see :func:`scan_inputs`), sorted."""
    return [f for f, _ in scan_inputs(paths, videos)[0]]


def transcript_language(texts: list[str]) -> str | None:
    """"zh" when most transcripts hold CJK ideographs, "en" otherwise; None without transcripts."""
    texts = [t for t in texts if t]
    if not texts:
        return None
    cjk = sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts)
    return "zh" if cjk * 2 > len(texts) else "en"


def corpus_language(folder: Path) -> str | None:
    """The transcript language recorded by prepare in ``report.json`` ("en" / "zh"), or None."""
    p = Path(folder) / "report.json"
    return json.loads(p.read_text()).get("language") if p.is_file() else None


def split_names(names: list[str] | list[Any], cfg: DataConfig | float) -> tuple[list[str], list[str]]:
    """(train, test) item names, disjoint, both sorted.

    ``cfg.split_by="utterance"``: the last ``ceil(holdout_fraction * n)`` names are held out (at
    least one train). ``"speaker"``: whole speakers (item folders, :func:`speaker_of`) are held
    out: ``cfg.test_speakers`` when given, else the last ``holdout_speakers`` (or
    ``ceil(holdout_fraction * speakers)``) by sorted speaker, so no test speaker is seen in
    training (Yang et al. 2024: 40 training and 4 test speakers). A float ``cfg`` is the
    utterance split with that fraction.
    """
    cfg = cfg if isinstance(cfg, DataConfig) else DataConfig(holdout_fraction=float(cfg))
    names = sorted(n if isinstance(n, str) else n.name for n in names)  # names or Utterances
    if cfg.split_by == "utterance":
        k = min(len(names) - 1, int(np.ceil(cfg.holdout_fraction * len(names)))) if cfg.holdout_fraction > 0 else 0
        return names[: len(names) - k], names[len(names) - k:]
    speakers = sorted({speaker_of(n) for n in names})
    if speakers == [""]:
        raise InputError("data.split_by=speaker needs one folder per speaker (items named speaker/utterance); "
                         "prepare the corpus root that holds the speaker folders")
    if cfg.test_speakers:
        unknown = sorted(set(cfg.test_speakers) - set(speakers))
        if unknown:
            raise InputError(f"data.test_speakers {unknown} are not in the data (speakers: {', '.join(speakers[:10])}"
                             f"{' ...' if len(speakers) > 10 else ''})")
        test_spk = set(cfg.test_speakers)
    else:
        k = cfg.holdout_speakers or int(np.ceil(cfg.holdout_fraction * len(speakers)))
        if not 0 < k < len(speakers):
            raise InputError(f"speaker split: {k} test speakers of {len(speakers)}; need at least one on each side")
        test_spk = set(speakers[len(speakers) - k:])
    return [n for n in names if speaker_of(n) not in test_spk], [n for n in names if speaker_of(n) in test_spk]


def split_for(folder: Path, utts: list[Any], cfg: DataConfig) -> tuple[list[str], list[str]]:
    """The prepared folder's ``split.json`` (written by prepare) restricted to ``utts``, else :func:`split_names`.

    The recorded split wins over ``cfg.split_by`` (a mismatch is logged): the data was prepared
    with it, e.g. ``a2v prepare tongue --split-by speaker``.
    """
    p = Path(folder) / "split.json"
    have = {u.name for u in utts}
    if p.is_file():
        s = json.loads(p.read_text())
        if s.get("by") != cfg.split_by:
            log.warning("%s: using its %s split (config asks data.split_by=%s)", p, s.get("by"), cfg.split_by)
        return [n for n in s["train"] if n in have], [n for n in s["test"] if n in have]
    return split_names(utts, cfg)
