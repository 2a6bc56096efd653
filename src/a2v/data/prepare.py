"""Generic dataset preparation runner behind ``a2v prepare <recipe> --input PATHS --output DIR``.

Inputs (files and folders, searched recursively for video files) are sorted by absolute path;
item ``i`` goes to worker ``i % num_shards``. Each worker streams its items through an
``extract`` callable and writes WebDataset shards (:mod:`a2v.data.shards`). The run resumes:
items already in ``manifest.jsonl`` or ``dropped.jsonl`` are skipped, except items dropped for an
unexpected exception (reason ``error``: a bug or a passing fault, not the data), which are tried
again; a killed run loses only its unfinished shard. A bad item never aborts the run: it is recorded in ``dropped.jsonl``
with a reason code. Under ``accelerate launch`` / ``torchrun`` the worker is read from
``RANK``/``WORLD_SIZE`` (or ``LOCAL_RANK``) when ``shard_index`` is -1.

An ``extract`` callable is ``extract(source: Path, item_id: str, work_dir: Path) -> dict`` mapping
member names to values (see :class:`~a2v.data.shards.ShardWriter`); ``meta.json`` must hold
``fps``, ``n_frames`` and ``duration_s``. It raises :class:`DropItem` (or any A2VError) to drop the
item. Files it writes go in ``work_dir`` (emptied after each item). The default is the
talking-face extraction :class:`a2v.data.items.TalkingFaceExtractor`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from a2v.config import load_config, to_dict
from a2v.data.shards import (
    CONFIG,
    DROPPED,
    MANIFEST,
    REPORT,
    SHARDS,
    ShardWriter,
    append_jsonl,
    read_dropped,
    read_jsonl,
)
from a2v.errors import A2VError, ConfigError, InputError
from a2v.io import write_json_atomic

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm")

Extractor = Callable[[Path, str, Path], dict[str, Any]]


@dataclass(frozen=True)
class PrepareConfig:
    """Dataset preparation settings (talk paper defaults: MTCNN every 10 frames, faces >= 200 px,
    256x256 crops at 25 fps).

    fps: target video frame rate (frames/s); videos are resampled to constant frame rate.
    audio_sr: audio sample rate in Hz (mono float32).
    detect_every_frames: detector keyframe period N; boxes are interpolated in between.
    min_face_px: smallest accepted face (longer box side, source pixels); 0 or >1 faces -> dropped.
    min_keyframe_iou: a face box whose IoU with the previous keyframe's is below this drops the
        clip (a cut or another person); 0 disables.
    detect_max_side_px: frames are shrunk to this longer side before detection (4K input), and
        further while the smallest accepted face stays >= 2x the detector's floor; boxes come back
        in source pixels.
    detect_batch_frames: keyframes sent to the detector at once.
    crop_size_px, margin_frac: square face crop side and margin around the box (a2v.face.crop).
    crop_crf, crop_preset: H.264 quality (constant rate factor) and x264 speed preset of crop.mp4.
    min_duration_s: shorter clips are dropped ("too_short").
    max_av_offset_s: clips whose audio and video lengths differ by more are dropped ("av_mismatch");
        smaller differences are cut or zero-padded so the audio spans exactly the video.
    detector: "mtcnn" (paper), "dlib" (= dlib HOG), "dlib_cnn" or "mediapipe".
    shard_max_items, shard_max_mb: a shard closes after this many items or megabytes.
    device: "auto" (cuda:LOCAL_RANK when CUDA is present, else cpu), "cpu", "cuda", "cuda:1".
    on_error: "drop" records an unexpected per-item exception as reason "error" and goes on;
        "raise" stops the run (debugging).
    """

    fps: float = 25.0
    audio_sr: int = 16000
    detect_every_frames: int = 10
    min_face_px: float = 200.0
    min_keyframe_iou: float = 0.2
    detect_max_side_px: int = 1280
    detect_batch_frames: int = 16
    crop_size_px: int = 256
    margin_frac: float = 0.25
    crop_crf: int = 18
    crop_preset: str = "fast"
    min_duration_s: float = 1.0
    max_av_offset_s: float = 1.0
    detector: Literal["mtcnn", "dlib", "dlib_cnn", "mediapipe"] = "mtcnn"
    shard_max_items: int = 100
    shard_max_mb: float = 1024.0
    device: str = "auto"
    on_error: Literal["drop", "raise"] = "drop"

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.audio_sr <= 0 or self.detect_every_frames < 1 or self.crop_size_px < 8:
            raise ConfigError(
                f"prepare config: fps ({self.fps}), audio_sr ({self.audio_sr}), detect_every_frames "
                f"({self.detect_every_frames}) must be positive and crop_size_px ({self.crop_size_px}) >= 8"
            )


# Settings that do not change the data: a resumed run may change them.
_RUNTIME_FIELDS = {"shard_max_items", "shard_max_mb", "device", "on_error", "detect_batch_frames"}


class DropItem(Exception):  # noqa: N818 - it is a signal, not a failure of the run
    """Raised by an extractor to drop an item: ``code`` (no_face, no_audio, corrupt...) and ``detail``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Item:
    """One input video: stable ``id`` (relative path stem + hash of the absolute path) and ``source``."""

    id: str
    source: Path


def item_id(path: Path, root: Path | None) -> str:
    """Stable id of a video: its path relative to ``root`` without suffix ('/' -> '__', other
    characters outside [A-Za-z0-9_-] -> '_') + '-' + the first 8 hex digits of SHA-1(absolute path)."""
    ap = path.resolve()
    # relative to the folder as found (a symlinked file may resolve outside it), named by its link
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)) if root is not None else Path(ap.name)
    stem = "__".join((*rel.parent.parts, rel.stem)) if rel.parent != Path(".") else rel.stem
    stem = re.sub(r"[^A-Za-z0-9_\-]", "_", stem)
    return f"{stem}-{hashlib.sha1(str(ap).encode('utf-8')).hexdigest()[:8]}"


def discover_items(inputs: Sequence[str | Path]) -> list[Item]:
    """Video files of ``inputs`` (files as given, folders searched recursively for VIDEO_EXTENSIONS),
    deduplicated, sorted by absolute path. InputError for a missing path or when nothing is found."""
    if not inputs:
        raise InputError("no --input given: pass video files or folders (--input clips/)")
    found: dict[Path, Item] = {}
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"input not found: {p} (check the --input path)")
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS]
            for f in files:
                found.setdefault(f.resolve(), Item(item_id(f, p), f.resolve()))
        else:
            found.setdefault(p.resolve(), Item(item_id(p, None), p.resolve()))
    if not found:
        raise InputError(
            f"no video files in {', '.join(str(i) for i in inputs)} (looked for {' '.join(VIDEO_EXTENSIONS)})"
        )
    items = [found[k] for k in sorted(found, key=str)]
    ids = Counter(i.id for i in items)
    if dup := [k for k, n in ids.items() if n > 1]:
        raise InputError(f"two inputs map to the same item id {dup[0]}; rename one of them")
    return items


def resolve_worker(num_shards: int, shard_index: int, env: dict[str, str] | None = None) -> tuple[int, int]:
    """(num_shards, shard_index) of this process.

    shard_index -1 reads the launcher's environment: ``RANK``/``WORLD_SIZE`` (accelerate launch,
    torchrun), else ``LOCAL_RANK``/``LOCAL_WORLD_SIZE``; a single process is worker 0 of 1.
    """
    env = os.environ if env is None else env
    if shard_index < 0:
        for rank_key, size_key in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
            if rank_key in env:
                rank, size = int(env[rank_key]), int(env.get(size_key, env.get("WORLD_SIZE", "1")))
                if num_shards in (1, size):
                    return size, rank
                raise ConfigError(
                    f"--num-shards {num_shards} differs from the launcher's {size_key}={size}; "
                    "leave --num-shards at 1 under a launcher or give --shard-index"
                )
        if num_shards == 1:
            return 1, 0
        raise ConfigError(
            f"--num-shards {num_shards} needs --shard-index (0..{num_shards - 1}) for each worker"
        )
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ConfigError(
            f"--shard-index {shard_index} must be in 0..{num_shards - 1} (--num-shards {num_shards})"
        )
    return num_shards, shard_index


def _output_dir(out_dir: str | Path) -> Path:
    """Create the dataset folder; InputError when it is a file or a non-empty folder of something else."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out} is a file: give a folder for the prepared dataset")
    # hidden names are skipped: another worker starting at the same moment may be writing its config
    if (
        out.is_dir()
        and not (out / CONFIG).is_file()
        and any(not p.name.startswith(".") for p in out.iterdir())
    ):
        raise InputError(
            f"--output {out} holds other files and no {CONFIG}: give a new or empty folder "
            "(or the folder of an earlier `a2v prepare` run to resume it)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _remove_orphan_shards(out: Path, worker: str, listed: set[str]) -> int:
    """Delete this worker's complete shards that the manifest does not name (a run killed between
    the shard's rename and its manifest lines): their items are redone. Returns how many."""
    orphans = [p for p in (out / SHARDS).glob(f"{worker}-*.tar") if f"{SHARDS}/{p.name}" not in listed]
    for p in orphans:
        p.unlink()
    return len(orphans)


def _check_config(out_dir: Path, cfg: PrepareConfig) -> None:
    """Save the resolved config; a resumed run must use the same data settings."""
    path = out_dir / CONFIG
    new = to_dict(cfg)
    if path.is_file():
        import json

        old = json.loads(path.read_text(encoding="utf-8"))
        diff = [k for k in new if k not in _RUNTIME_FIELDS and old.get(k) != new[k]]
        if diff:
            k = diff[0]
            raise ConfigError(
                f"{out_dir} was prepared with {k}={old.get(k)!r}, this run asks {k}={new[k]!r}: "
                "use the same config to resume, or a new --output folder"
            )
        return
    write_json_atomic(path, new)


def _progress(enabled: bool):  # noqa: ANN202 - rich Progress
    from a2v.cliutil import progress_bar

    return progress_bar("[bold]prepare", "kept {task.fields[kept]} dropped {task.fields[dropped]}", enabled=enabled)


def summarize(out_dir: Path, total: int) -> dict[str, Any]:
    """Counts over the whole folder (every worker): total inputs, kept, dropped (by reason), pending."""
    kept = {r["id"] for r in read_jsonl(out_dir / MANIFEST)}
    dropped = {r["id"]: r["reason"] for r in read_dropped(out_dir)}
    by_reason = dict(sorted(Counter(dropped.values()).items()))
    return {
        "total": total,
        "kept": len(kept),
        "dropped": len(dropped),
        "dropped_by_reason": by_reason,
        "pending": max(0, total - len(kept) - len(dropped)),
    }


def prepare_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    cfg: PrepareConfig = PrepareConfig(),
    num_shards: int = 1,
    shard_index: int = -1,
    extract: Extractor | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare this worker's share of ``inputs`` into ``out_dir``; returns the report dict.

    Report: total (inputs over all workers), kept, dropped, dropped_by_reason, pending (items of
    other workers or still to do), seconds (this run), and ``run`` (this worker: worker, num_shards,
    items, skipped, kept, dropped, seconds, items_per_s). Also written to ``out_dir/report.json``
    (and ``out_dir/reports/<worker>.json``).
    """
    t0 = time.perf_counter()
    items = discover_items(inputs)
    num_shards, shard_index = resolve_worker(num_shards, shard_index)
    out = _output_dir(out_dir)
    _check_config(out, cfg)
    manifest = read_jsonl(out / MANIFEST)
    drops = read_dropped(out)
    done = {r["id"] for r in manifest} | {r["id"] for r in drops if r["reason"] != "error"}
    mine = [it for i, it in enumerate(items) if i % num_shards == shard_index]
    todo = [it for it in mine if it.id not in done]
    retried = len({r["id"] for r in drops if r["reason"] == "error"} & {it.id for it in todo})
    worker = f"{shard_index:05d}"
    if extract is None and todo:
        from a2v.data.items import TalkingFaceExtractor

        extract = TalkingFaceExtractor(cfg)
    orphans = _remove_orphan_shards(out, worker, {r["shard"] for r in manifest})
    work_dir = out / ".work" / worker
    pending_rows: dict[str, dict[str, Any]] = {}
    run = Counter()

    def on_close(shard: str, keys: list[str]) -> None:
        append_jsonl(out / MANIFEST, [{**pending_rows.pop(k), "shard": shard} for k in keys])

    with (
        _progress(progress) as bar,
        ShardWriter(out, worker, cfg.shard_max_items, cfg.shard_max_mb, on_close) as writer,
    ):
        task = bar.add_task("prepare", total=len(todo), kept=0, dropped=0)
        for it in todo:
            shutil.rmtree(work_dir, ignore_errors=True)
            work_dir.mkdir(parents=True)
            reason: tuple[str, str] | None = None
            try:
                sample = extract(it.source, it.id, work_dir)
            except DropItem as e:
                reason = (e.code, e.detail)
            except A2VError as e:
                reason = ("invalid_input", str(e).splitlines()[0] if str(e) else type(e).__name__)
            except Exception as e:  # noqa: BLE001 - one odd file must not stop a long run; it is recorded
                if cfg.on_error == "raise":
                    raise
                reason = ("error", f"{type(e).__name__}: {e}".splitlines()[0])
            if reason is None:
                meta = sample["meta.json"]
                pending_rows[it.id] = {
                    "id": it.id,
                    "source": str(it.source),
                    "n_frames": int(meta["n_frames"]),
                    "fps": float(meta["fps"]),
                    "duration_s": float(meta["duration_s"]),
                    "audio_sr": int(meta.get("audio_sr", cfg.audio_sr)),
                }
                writer.add(it.id, sample)
                run["kept"] += 1
            else:
                append_jsonl(
                    out / DROPPED,
                    [{"id": it.id, "source": str(it.source), "reason": reason[0], "detail": reason[1]}],
                )
                run["dropped"] += 1
            bar.update(task, advance=1, kept=run["kept"], dropped=run["dropped"])
    shutil.rmtree(out / ".work" / worker, ignore_errors=True)
    with contextlib.suppress(OSError):
        (out / ".work").rmdir()  # only when no other worker still uses it
    seconds = time.perf_counter() - t0
    report = summarize(out, len(items))
    report["seconds"] = round(seconds, 3)
    report["run"] = {
        "worker": shard_index,
        "num_shards": num_shards,
        "items": len(mine),
        "skipped": len(mine) - len(todo),
        "retried_errors": retried,
        "orphan_shards_removed": orphans,
        "kept": run["kept"],
        "dropped": run["dropped"],
        "seconds": round(seconds, 3),
        "items_per_s": round(len(todo) / seconds, 3) if seconds > 0 else None,
    }
    write_json_atomic(out / "reports" / f"{worker}.json", report)
    write_json_atomic(out / REPORT, report)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A few human lines for the console."""
    lines = [
        f"items {report['total']}: kept {report['kept']}, dropped {report['dropped']}, pending {report['pending']}"
        f" ({report['seconds']:.1f} s)"
    ]
    for reason, n in report["dropped_by_reason"].items():
        lines.append(f"  dropped {reason}: {n}")
    if report.get("run", {}).get("retried_errors"):
        lines.append(f"  retried after an earlier unexpected error: {report['run']['retried_errors']}")
    return "\n".join(lines)


def run_prepare_command(
    recipe: str,
    input: Sequence[str | Path],  # noqa: A002 - the CLI option's name
    output: str | Path,
    num_shards: int = 1,
    shard_index: int = -1,
    config: str | Path | None = None,
    set_: Sequence[str] | None = None,
    extract: Extractor | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """One-line body of a recipe's ``cli.prepare``: PrepareConfig from ``config`` YAML (the file's
    ``prepare:`` section when it has one, else the whole file) + ``--set`` overrides (``prepare.x=``
    or ``x=``), run :func:`prepare_dataset`, print the summary; returns the report.

    With no ``config``, ``configs/<recipe>/paper.yaml``'s ``prepare:`` section is used when present.
    """
    from a2v.cliutil import configs_dir, console
    from a2v.config import read_yaml

    path = Path(config) if config is not None else configs_dir() / recipe / "paper.yaml"
    data: dict[str, Any] = {}
    if config is not None or path.is_file():
        data = read_yaml(path)
        names = {f.name for f in fields(PrepareConfig)}
        data = data.get("prepare", {}) if "prepare" in data or not set(data) <= names else data
    sets = [s.removeprefix("prepare.") for s in (set_ or [])]
    cfg = load_config(PrepareConfig, None, sets, base=data)
    report = prepare_dataset(list(input), output, cfg, num_shards, shard_index, extract, progress)
    console.print(f"a2v prepare {recipe} -> {output}", soft_wrap=True)
    console.print(format_report(report), soft_wrap=True)
    console.print(f"report: {Path(output) / REPORT}; dropped items: {Path(output) / DROPPED}", soft_wrap=True)
    return report
