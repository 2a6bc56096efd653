"""User-facing errors: one clear line (what, which file, what to do), no traceback.

Library code raises :class:`A2VError` (or a subclass) for anything the user can fix:
bad input files, bad configs, missing optional packages or weights. The CLI prints
``error: <message>`` and exits with status 2; any other exception is a bug.
"""

from __future__ import annotations

from pathlib import Path


class A2VError(Exception):
    """An error the user can fix; its message is one line: what, which file, what to do."""

    exit_code = 2


class InputError(A2VError):
    """Bad input data: missing, corrupt, empty, silent, wrong format."""


class ConfigError(A2VError):
    """Bad configuration: unreadable YAML, unknown key, wrong type."""


class MissingDependencyError(A2VError, ImportError):
    """An optional package is not installed."""


class MissingWeightsError(A2VError, FileNotFoundError):
    """Pretrained weights were asked for but are not on disk (and no hub is reachable)."""


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing, non-empty file; raise InputError otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p} (check the path)")
    if p.is_dir():
        raise InputError(f"{what} is a directory, expected a file: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"{what} is empty (0 bytes): {p}")
    return p


def missing_package(package: str, extra: str, feature: str) -> MissingDependencyError:
    """Build the error for a lazily imported optional package (raise it ``from`` the ImportError)."""
    return MissingDependencyError(f"{feature} needs the package '{package}': pip install 'a2v[{extra}]'")
