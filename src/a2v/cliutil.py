"""Pieces shared by the recipe command lines: config options, output paths, a console.

Recipe ``cli.py`` modules import only this at module level (cheap, no torch) and
import their heavy code inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from a2v.config import load_config

T = TypeVar("T")

console = Console(stderr=True, soft_wrap=True)  # one message = one line, also in logs and pipes

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config (e.g. configs/<recipe>/paper.yaml or tiny.yaml).", show_default=False),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config value: --set train.lr=1e-4 (repeatable).", show_default=False),
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in the run folder.")]


def configs_dir() -> Path:
    """The repository's ``configs/`` folder (``configs/<recipe>/{paper,tiny}.yaml``)."""
    return Path(__file__).resolve().parents[2] / "configs"


def recipe_config(cls: type[T], recipe: str, config: Path | None, sets: list[str] | None, preset: str = "paper") -> T:
    """Load a recipe config: ``configs/<recipe>/<preset>.yaml`` when no ``--config`` is given, then ``--set``.

    The dataclass defaults are the paper's settings, so a missing preset file (e.g. a
    non-editable install) falls back to them.
    """
    path = config if config is not None else configs_dir() / recipe / f"{preset}.yaml"
    if config is None and not path.is_file():
        return load_config(cls, None, sets or [])
    return load_config(cls, path, sets or [])


def progress_bar(label: str, *extra: str, enabled: bool = True) -> Any:
    """A rich progress bar on the a2v console: ``label``, bar, done/total, ``extra`` text columns
    (e.g. ``"kept {task.fields[kept]}"``), elapsed time and ETA. Use as a context manager."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), *(TextColumn(e) for e in extra),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not enabled,
    )


def info(msg: str, **kw: Any) -> None:
    console.print(msg, **kw)
