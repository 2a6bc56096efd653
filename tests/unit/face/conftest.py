"""Fixtures for face tests: a real one-face photo (scikit-image astronaut), detectors, GRID reading."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (public domain, one face): uint8 (512,512,3) RGB."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="session")
def mtcnn():
    pytest.importorskip("facenet_pytorch")
    from a2v.face.detect import MTCNNDetector

    return MTCNNDetector(device="cpu", min_size_px=40)
