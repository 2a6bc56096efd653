"""Pickle trust comes from the server's command line only: a model folder whose own config sets
``generator.trust_pickle=true`` is not unpickled unless the server runs with ``--trust-pickles``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from serve_testutil import running

from a2v.errors import A2VError
from a2v.serve import jobs
from a2v.serve.config import ServeConfig

REPO = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this creates ``marker`` (stands in for any code a pickle can run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evil_talk_model(models: Path, marker: Path) -> Path:
    """A valid tiny talk pipeline folder whose talk.json names a pickle and trusts it."""
    from a2v.config import load_config
    from a2v.gan.stylegan import SmallStyleGenerator
    from a2v.nn.vae import MLPVAE
    from a2v.recipes.talk.config import TalkConfig
    from a2v.recipes.talk.data import Normalizer
    from a2v.recipes.talk.model import Embed2Lat
    from a2v.recipes.talk.pipeline import TalkPipeline

    cfg = load_config(TalkConfig, REPO / "configs" / "talk" / "tiny.yaml")
    G = SmallStyleGenerator(cfg.generator.builtin)
    pipe = TalkPipeline(G, MLPVAE(cfg.vae_dims(G.w_dim)), Embed2Lat(cfg.embed2lat, 32, cfg.vae.latent_dim),
                        Normalizer(0.0, 1.0), cfg)
    d = pipe.save_pretrained(models / "talk" / "evil")
    pkl = d / "evil.pkl"
    pkl.write_bytes(pickle.dumps(_Payload(marker)))
    info = json.loads((d / "talk.json").read_text())
    info["generator"] = str(pkl)
    info["config"]["generator"].update(kind="nvlabs", path=str(pkl), code_dir="", trust_pickle=True)
    (d / "talk.json").write_text(json.dumps(info))
    return d


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    marker = root / "pwned"
    return _evil_talk_model(root / "models", marker), marker


def test_model_folder_cannot_grant_itself_pickle_trust_over_http(evil, inputs):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from a2v.serve.app import build_app

    d, marker = evil
    face, speech = inputs
    app = build_app(d.parents[1], ServeConfig(device="cpu"))
    try:
        with running(app) as url:
            client = Client(url, verbose=False)
            with pytest.raises(AppError, match="refusing to unpickle evil.pkl"):
                client.predict("evil", handle_file(str(face)), handle_file(str(speech)), 1.0, api_name="/talk")
    finally:
        app.state.workspace.close()
    assert not marker.exists()


def test_trust_comes_from_the_server_flag(evil, inputs, tmp_path):
    d, marker = evil
    face, speech = inputs
    assert jobs.talk_trust_overrides(d, False) == ["invert.trust_encoder=false", "generator.trust_pickle=false"]
    with pytest.raises(A2VError, match="refusing to unpickle"):
        jobs.run_talk(face, speech, tmp_path, ServeConfig(device="cpu"), models_dir=d.parents[1], model="evil")
    assert not marker.exists()
    # the same folder with `a2v serve --trust-pickles`: the pickle is loaded (and runs its code)
    with pytest.raises(A2VError):
        jobs.run_talk(face, speech, tmp_path, ServeConfig(device="cpu", trust_pickles=True), models_dir=d.parents[1],
                      model="evil")
    assert marker.exists()
