"""Talk invert stage: interrupted and resumed runs equal a full run and invert only the missing clips; settings
must match to resume; frames batched (later_init=first) and encoder initialisation through the config, the
pipeline and the CLI."""

import json

import pytest
import torch
from talk_testutil import export_lookup_encoder, write_prepared_dataset

from a2v.config import replace
from a2v.errors import ConfigError, InputError
from a2v.recipes.talk import invert as inv_mod
from a2v.recipes.talk.data import LatentStore

REAL_INVERT_CLIPS = inv_mod.invert_clips


@pytest.fixture(scope="module")
def cfg(tiny_cfg):
    return replace(tiny_cfg, ["invert.max_batch=1", "invert.first_steps=3", "invert.later_steps=1"])


@pytest.fixture(scope="module")
def full(cfg, tiny_generator, tiny_clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("talk_full")
    inv_mod.run_invert(cfg, None, root, clips=tiny_clips, generator=tiny_generator, progress=False)
    return LatentStore(root / "latents")


class Stop(Exception):
    """Stands for an interruption (Ctrl-C, a killed job) after some groups of clips."""


@pytest.fixture(scope="module")
def good_codes(tiny_generator, tiny_clips):
    """W+ codes of the clips' first frames from a longer inversion (what a good encoder would give) and their
    loss; the random tiny generator's images exceed [-1,1], so its own codes do not reproduce the clamped frames."""
    from a2v.gan.invert import ReconstructionLoss, optimize_ws
    from a2v.recipes.talk.data import frames_to_tensor

    G = tiny_generator
    target = torch.cat([frames_to_tensor(c.frames[:1], G.resolution) for c in tiny_clips])  # (N,3,R,R)
    start = G.w_avg[None, None].expand(len(tiny_clips), G.num_ws, -1)  # (N,num_ws,w_dim)
    res = optimize_ws(G.synthesis, target, start, 40, 0.02, ReconstructionLoss(None, lpips_weight=0.0),
                      lr_final=0.01)
    return res.ws, res.loss


def _recording(monkeypatch, stop_after=None):
    seen: list[list[str]] = []

    def wrapped(cfg, clips, *a, **k):
        if stop_after is not None and len(seen) == stop_after:
            raise Stop
        seen.append([c.id for c in clips])
        return REAL_INVERT_CLIPS(cfg, clips, *a, **k)

    monkeypatch.setattr(inv_mod, "invert_clips", wrapped)
    return seen


def test_interrupted_run_resumes_with_the_missing_clips(cfg, tiny_generator, tiny_clips, full, tmp_path, monkeypatch):
    seen = _recording(monkeypatch, stop_after=1)
    with pytest.raises(Stop):
        inv_mod.run_invert(cfg, None, tmp_path, clips=tiny_clips, generator=tiny_generator, progress=False)
    assert seen == [["clip0"]]
    index = json.loads((tmp_path / "latents" / "index.json").read_text())
    assert [r["id"] for r in index["clips"]] == ["clip0"] and index["complete"] is False
    with pytest.raises(InputError, match="incomplete"):
        LatentStore(tmp_path / "latents")

    seen = _recording(monkeypatch)
    store = inv_mod.run_invert(cfg, None, tmp_path, clips=tiny_clips, generator=tiny_generator, progress=False,
                               resume=True)
    assert seen == [["clip1"], ["clip2"]]  # only the clips not done yet
    assert store.ids == full.ids == ["clip0", "clip1", "clip2"]
    for cid in full.ids:
        for k, v in full.clip(cid).items():
            torch.testing.assert_close(store.clip(cid)[k], v, rtol=1e-4, atol=1e-5)

    seen = _recording(monkeypatch)
    inv_mod.run_invert(cfg, None, tmp_path, clips=tiny_clips, generator=tiny_generator, progress=False, resume=True)
    assert seen == []  # all done: nothing to invert
    with pytest.raises(ConfigError, match="invert.first_steps"):
        inv_mod.run_invert(replace(cfg, ["invert.first_steps=4"]), None, tmp_path, clips=tiny_clips,
                           generator=tiny_generator, progress=False, resume=True)
    inv_mod.run_invert(cfg, None, tmp_path, clips=tiny_clips[:1], generator=tiny_generator, progress=False)
    assert seen == [["clip0"]]  # without --resume every clip is inverted again


def test_frames_batched_and_encoder_init_through_the_config(cfg, tiny_generator, tiny_clips, good_codes, tmp_path):
    first = replace(cfg, ["invert.later_init=first", "invert.later_steps=0"])
    store = inv_mod.run_invert(first, None, tmp_path / "first", clips=tiny_clips, generator=tiny_generator,
                               progress=False)
    ws = store.clip("clip1")["ws"]
    assert torch.equal(ws[5], ws[0]) and torch.equal(ws[-1], ws[0])  # no steps: every frame from frame 0

    enc = export_lookup_encoder(tiny_clips, tiny_generator, good_codes[0], tmp_path / "enc.pt2")
    still = replace(cfg, ["invert.first_steps=1", "invert.first_lr=1e-9", "invert.first_lr_final=1e-9"])  # ~ step 0
    encfg = replace(still, ["invert.init=encoder", f"invert.encoder_path={enc}", "invert.trust_encoder=true"])
    kw = dict(clips=tiny_clips, generator=tiny_generator, progress=False)
    from_enc = inv_mod.run_invert(encfg, None, tmp_path / "enc", **kw)
    from_mean = inv_mod.run_invert(replace(still, ["invert.init=mean"]), None, tmp_path / "mean", **kw)
    for i, cid in enumerate(from_enc.ids):  # frame 0 starts at the encoder's code, below the mean start
        loss0 = from_enc.clip(cid)["loss"][0]
        torch.testing.assert_close(loss0, good_codes[1][i], rtol=1e-3, atol=1e-6)
        assert loss0 < 0.5 * from_mean.clip(cid)["loss"][0]
    with pytest.raises(ConfigError, match="encoder_path"):
        replace(cfg, ["invert.init=encoder"])


def test_pipeline_photo_inversion_from_the_encoder(tiny_cfg, tiny_generator, tiny_clips, good_codes, tmp_path):
    from a2v.nn.vae import MLPVAE
    from a2v.recipes.talk.data import Normalizer
    from a2v.recipes.talk.model import Embed2Lat
    from a2v.recipes.talk.pipeline import TalkPipeline

    enc = export_lookup_encoder(tiny_clips, tiny_generator, good_codes[0], tmp_path / "enc.pt2")
    cfg = replace(tiny_cfg, ["invert.init=encoder", f"invert.encoder_path={enc}", "invert.trust_encoder=true"])
    parts = (MLPVAE(cfg.vae_dims(32)), Embed2Lat(cfg.embed2lat, 32, cfg.vae.latent_dim), Normalizer(0.0, 1.0))
    true = good_codes[0][2]
    w0 = TalkPipeline(tiny_generator, *parts, cfg).invert_photo(tiny_clips[2].frames[0], steps=1)
    assert (w0 - true).abs().max() < 0.03  # one Adam step (lr 0.02) from the encoder's code
    w0_mean = TalkPipeline(tiny_generator, *parts, replace(tiny_cfg, ["invert.init=mean"])).invert_photo(tiny_clips[2].frames[0], steps=1)
    assert (w0_mean - true).abs().max() > 0.1


def test_cli_invert_resume_and_encoder(tiny_clips, tmp_path, capsys):
    from a2v.cli import main

    data = write_prepared_dataset(tmp_path / "data", tiny_clips[:2])
    run = tmp_path / "run"
    base = ["talk", "train", "--stage", "invert", "-d", str(data), "-o", str(run), "--preset", "tiny", "--no-progress",
            "--set", "invert.first_steps=2", "--set", "invert.later_steps=1"]
    assert main([*base, "--set", "invert.max_clips=1"]) == 0
    clip0 = (run / "latents" / "clip0.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*base, "--resume"]) == 0  # the random built-in generator of the first run is reused
    said = capsys.readouterr()
    assert "1 skipped" in " ".join((said.out + said.err).split())
    assert LatentStore(run / "latents").ids == ["clip0", "clip1"]
    assert (run / "latents" / "clip0.safetensors").read_bytes() == clip0
    assert main([*base, "--encoder", str(tmp_path / "none.pt2"), "--trust-encoder"]) == 2  # missing file
    assert "none.pt2" in capsys.readouterr().err
