"""Shared fixtures: real GRID clips when present, deterministic generated inputs otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _grid_candidates() -> list[Path]:
    env = os.environ.get("A2V_GRID_DIR")
    cands = [Path(env)] if env else []
    cands.append(REPO.parent / "shared" / "data" / "grid")
    return cands


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """Folder of GRID .mpg clips (../shared/data/grid); the test is skipped when absent."""
    for c in _grid_candidates():
        if c.is_dir() and any(c.glob("*.mpg")):
            return c
    pytest.skip("GRID sample clips not found (../shared/data/grid)")


@pytest.fixture(scope="session")
def grid_clips(grid_dir: Path) -> list[Path]:
    """The GRID .mpg clips, sorted by name."""
    return sorted(grid_dir.glob("*.mpg"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests run tiny models: one intra-op thread is fastest for them and never oversubscribes
    the CPU when other processes (workers, a server) share it."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
