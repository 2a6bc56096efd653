"""Recipe tabs: every tab is reachable through Gradio's client API and answers a one-line message
when no trained model is there; the face tab runs a (random, tiny) face pipeline end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from a2v.errors import InputError
from a2v.serve import jobs
from a2v.serve.config import ServeConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("api", ["/talk", "/tongue", "/face", "/image"])
def test_tab_without_a_model_answers_with_a_message(server, inputs, api):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = server
    face, speech = inputs
    client = Client(url, verbose=False)
    args = {
        "/talk": [None, handle_file(str(face)), handle_file(str(speech)), 1.0],
        "/tongue": [None, handle_file(str(speech)), "", 0],
        "/face": [None, handle_file(str(speech)), 2, 1.0, "ddim", 10],
        "/image": [None, handle_file(str(speech)), 10, 0],
    }[api]
    with pytest.raises(AppError, match="no trained .* model"):
        client.predict(*args, api_name=api)


def test_face_job_runs_a_saved_pipeline(tmp_path):
    from a2v.audio import save_audio, synthesize_speech
    from a2v.config import load_config
    from a2v.recipes.face.config import FaceConfig
    from a2v.recipes.face.pipeline import FacePipeline
    from a2v.video import load_image

    cfg = load_config(FaceConfig, REPO / "configs" / "face" / "tiny.yaml")
    FacePipeline.from_config(cfg, device="cpu", with_superres=False).save_pretrained(tmp_path / "models" / "face" / "tiny")
    wav = save_audio(tmp_path / "voice.wav", synthesize_speech("One two three."), 16000)
    out = tmp_path / "job"
    out.mkdir()
    paths, report = jobs.run_face(wav, out, ServeConfig(device="cpu"), models_dir=tmp_path / "models", num=2,
                                  guidance_w=1.0, sampler="ddim", num_steps=3)
    assert len(paths) == 2 and report["faces"] == 2
    img = load_image(paths[0])
    assert img.dtype == np.uint8 and img.shape == (cfg.decoder.image_size_px, cfg.decoder.image_size_px, 3)
    with pytest.raises(InputError, match="no face model named 'nobody'"):
        jobs.run_face(wav, out, ServeConfig(), models_dir=tmp_path / "models", model="nobody")
