"""A real a2v server on a free localhost port, shared by the serve tests."""

from __future__ import annotations

import numpy as np
import pytest
from serve_testutil import running


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """(base_url, app) of a running server; stopped at the end."""
    from a2v.serve.app import build_app
    from a2v.serve.config import ServeConfig

    models = tmp_path_factory.mktemp("models")
    app = build_app(models, ServeConfig(max_upload_mb=5.0, max_audio_s=30.0))
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """A face photo (astronaut, downscaled) and 2 s of eSpeak NG speech as files."""
    from skimage import data
    from skimage.transform import resize

    from a2v.audio import save_audio, synthesize_speech
    from a2v.video import write_png

    root = tmp_path_factory.mktemp("inputs")
    photo = (resize(data.astronaut(), (256, 256), anti_aliasing=True) * 255).astype(np.uint8)
    write_png(root / "face.png", photo)
    save_audio(root / "speech.wav", synthesize_speech("Hello there, how are you?"), 16000)
    return root / "face.png", root / "speech.wav"
