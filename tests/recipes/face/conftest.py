"""Face-recipe test helpers: one torch thread per test (the CI machine has 2 shared cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def tiny_cfg():
    from a2v.config import load_config
    from a2v.recipes.face.config import FaceConfig

    return load_config(FaceConfig, REPO / "configs" / "face" / "tiny.yaml")
