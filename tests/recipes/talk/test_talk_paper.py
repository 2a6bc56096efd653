"""The talk recipe follows its paper where the issue asks: motion scale on the predicted code mu, first-frame
inversion from a random w, Embed2Lat trained and validated on the same units, the paper config."""

import zlib

import pytest
import torch
from talk_testutil import REPO

from a2v.config import load_config, replace
from a2v.nn.vae import MLPVAE
from a2v.recipes.talk.config import TalkConfig
from a2v.recipes.talk.data import Normalizer
from a2v.recipes.talk.model import Embed2Lat


class FeatEncoder(torch.nn.Module):
    """Stands for wav2vec2: wav (S,) 16 kHz -> (T,D) at 50 Hz, a fixed random projection of 320-sample hops."""

    frame_rate_hz = 50.0

    def __init__(self, dim: int = 12) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.proj = torch.nn.Linear(320, dim)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.proj(wav[: wav.shape[0] // 320 * 320].reshape(-1, 320))  # (S,)->(T,320)->(T,D)


@pytest.fixture(scope="module")
def pipe(tiny_cfg, tiny_generator):
    from a2v.recipes.talk.pipeline import TalkPipeline

    torch.manual_seed(0)
    cfg = tiny_cfg
    vae = MLPVAE(cfg.vae_dims(tiny_generator.w_dim))
    net = Embed2Lat(cfg.embed2lat, 12, cfg.vae.latent_dim)
    return TalkPipeline(tiny_generator, vae, net, Normalizer(0.1, 2.0), cfg, speech_encoder=FeatEncoder())


def test_paper_config_scales_the_predicted_code_by_500(pipe):
    from a2v.recipes.talk.cli import _config

    assert _config(None, None, "paper").generate.motion_scale == 500.0
    assert TalkConfig().generate.motion_scale == 500.0
    wav = torch.randn(16000 // 5)  # 0.2 s -> 5 frames
    mu = pipe.predict_codes(wav, 5)  # (F,Z)
    assert mu.shape == (5, pipe.cfg.vae.latent_dim)
    dw = pipe.predict_offsets(wav, 5, motion_scale=500.0)
    torch.testing.assert_close(dw, pipe.normalizer.inverse(pipe.vae.decode(500.0 * mu)))
    # not the old rule (the decoded offsets times the scale): the VAE decoder is not linear
    old = 500.0 * pipe.normalizer.inverse(pipe.vae.decode(mu))
    assert (dw - old).abs().max() > 1.0
    # the default comes from the config
    torch.testing.assert_close(pipe.predict_offsets(wav, 5), dw)
    pipe2 = type(pipe)(pipe.generator, pipe.vae, pipe.embed2lat, pipe.normalizer,
                       replace(pipe.cfg, ["generate.motion_scale=2"]), pipe.speech_encoder)
    torch.testing.assert_close(pipe2.predict_offsets(wav, 5), pipe.normalizer.inverse(pipe.vae.decode(2.0 * mu)))


def test_generate_applies_the_scale_to_mu(pipe):
    w0 = pipe.generator.w_avg.expand(pipe.generator.num_ws, -1).clone()
    wav = torch.randn(16000 // 5).numpy()
    photo = torch.zeros(32, 32, 3, dtype=torch.uint8).numpy()
    res = pipe.generate(photo, wav, motion_scale=3.0, w0=w0, detect_face=False, progress=False)
    expect = pipe.synthesize(w0, pipe.normalizer.inverse(pipe.vae.decode(3.0 * pipe.predict_codes(wav, 5))))
    assert (res.frames == expect).all()


def test_first_frame_inversion_starts_from_a_random_w(tiny_cfg, tiny_generator, tiny_clips):
    from a2v.gan.invert import ReconstructionLoss
    from a2v.recipes.talk.invert import invert_clips, random_start

    G = tiny_generator
    assert TalkConfig().invert.init == "random"
    assert load_config(TalkConfig, REPO / "configs" / "talk" / "paper.yaml").invert.init == "random"
    still = replace(tiny_cfg, ["invert.first_steps=1", "invert.first_lr=1e-12", "invert.first_lr_final=1e-12",
                               "invert.later_steps=0"])  # frame 0 stays at its start
    loss = ReconstructionLoss(None, lpips_weight=0.0)
    clips = tiny_clips[:2]
    got = invert_clips(still, clips, G, loss, progress=False)
    starts = random_start(G, [c.id for c in clips], 0)  # (N,num_ws,w_dim)
    for (_, t), s in zip(got, starts, strict=True):
        torch.testing.assert_close(t["ws"][0], s, atol=1e-6, rtol=0)
        assert (t["ws"][0] - G.w_avg).abs().max() > 0.1  # not the mean w
        torch.testing.assert_close(t["ws"][0, 0], t["ws"][0, -1])  # one w in every W+ row
    assert (starts[0] - starts[1]).abs().max() > 0.1  # one random z per clip
    # the same z for a clip whatever its batch; another seed gives another start
    alone = invert_clips(still, clips[1:], G, loss, progress=False)
    torch.testing.assert_close(alone[0][1]["ws"][0], got[1][1]["ws"][0])
    other = invert_clips(replace(still, ["invert.seed=1"]), clips[1:], G, loss, progress=False)
    assert (other[0][1]["ws"][0] - got[1][1]["ws"][0]).abs().max() > 0.1
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(zlib.crc32(b"0:clip0")))
    torch.testing.assert_close(starts[0], G.mapping(z)[0])  # w = mapping(z), z ~ N(0, I)
    # w_avg stays as a labelled option
    mean = invert_clips(replace(still, ["invert.init=mean"]), clips[:1], G, loss, progress=False)
    torch.testing.assert_close(mean[0][1]["ws"][0], G.w_avg.expand(G.num_ws, -1), atol=1e-6, rtol=0)


def test_photo_inversion_starts_from_a_random_w(pipe):
    from a2v.recipes.talk.invert import random_start

    G = pipe.generator
    photo = torch.zeros(32, 32, 3, dtype=torch.uint8).numpy()
    slow = type(pipe)(G, pipe.vae, pipe.embed2lat, pipe.normalizer,
                      replace(pipe.cfg, ["invert.first_lr=1e-12", "invert.first_lr_final=1e-12"]), pipe.speech_encoder)
    w0 = slow.invert_photo(photo, steps=1)
    torch.testing.assert_close(w0, random_start(G, ["photo"], 0)[0], atol=1e-6, rtol=0)
    assert (w0 - G.w_avg).abs().max() > 0.1


def test_whole_clips_and_tiled_windows():
    from a2v.recipes.talk.data import WindowDataset, collate_padded

    feats = [torch.arange(29.0)[:, None].expand(29, 2), torch.arange(8.0)[:, None].expand(8, 2)]  # 50 Hz, 2F-1 rows
    codes = [torch.arange(15.0)[:, None], torch.arange(4.0)[:, None]]  # 25 fps
    whole = WindowDataset(feats, codes, 0)
    assert len(whole) == 2 and whole[0]["codes"].shape == (15, 1) and whole[0]["feats"].shape == (30, 2)
    assert whole[0]["feat_mask"].tolist() == [True] * 29 + [False]  # the missing last feature row is masked
    b = collate_padded([whole[0], whole[1]])
    assert b["feats"].shape == (2, 30, 2) and b["codes"].shape == (2, 15, 1)
    assert b["mask"][1].tolist() == [True] * 4 + [False] * 11 and b["feat_mask"][1].sum() == 8
    tiled = WindowDataset(feats, codes, 10, tile=True)
    assert [tiled.frames(k) for k in range(len(tiled))] == [(0, 0), (0, 10), (1, 0)]  # every frame once
    assert tiled[1]["mask"].tolist() == [True] * 5 + [False] * 5 and tiled[1]["feats"][0, 0] == 20
    assert tiled[1]["feat_mask"].sum() == 9  # feature rows 20..28


def test_embed2lat_runs_as_trained():
    from a2v.recipes.talk.config import Embed2LatSettings
    from a2v.recipes.talk.model import predict_clip_codes

    cfg = Embed2LatSettings(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16, conv_pos_kernel=4,
                            conv_pos_groups=2, dropout=0.0)
    torch.manual_seed(0)
    net = Embed2Lat(cfg, in_dim=5, code_dim=3).eval()
    feats = torch.randn(40, 5)  # 20 frames
    with torch.no_grad():
        whole = predict_clip_codes(net, feats, 20, 0)
        torch.testing.assert_close(whole, net(feats[None], 20)[0])
        win = predict_clip_codes(net, feats, 20, 8)  # windows 0-7, 8-15, 16-19 (padded, masked)
        parts = [net(feats[None, 0:16], 8)[0], net(feats[None, 16:32], 8)[0], net(feats[None, 32:40], 4)[0]]
    assert win.shape == (20, 3)
    torch.testing.assert_close(win, torch.cat(parts), rtol=1e-4, atol=1e-5)
    assert (win - whole).abs().max() > 1e-3  # windows are another way to run it


@pytest.mark.parametrize("window", [0, 10])
def test_validation_mse_of_training_equals_the_evaluated_one(tiny_cfg, tiny_generator, tiny_clips, tmp_path, window):
    import json

    from a2v.recipes.talk.evaluate import evaluate_run
    from a2v.recipes.talk.train import run_invert, run_stage

    cfg = replace(tiny_cfg, [f"embed2lat.window_frames={window}", "invert.first_steps=2", "invert.later_steps=1"])
    run_invert(cfg, None, tmp_path, clips=tiny_clips, generator=tiny_generator, progress=False)
    run_stage(cfg, "vae", None, tmp_path, progress=False)
    run_stage(cfg, "embed2lat", None, tmp_path, progress=False)
    best = json.loads((tmp_path / "embed2lat" / "checkpoints" / "best.json").read_text())
    m = evaluate_run(tmp_path)
    assert best["metric"] == "val_mse"
    assert m["embed2lat_val_mse"] == pytest.approx(best["value"], rel=1e-4)
    # and it is the MSE of this way of running: the other one (whole clips vs windows) gives another number
    from a2v.recipes.talk.data import LatentStore, offsets
    from a2v.recipes.talk.pipeline import TalkPipeline
    from a2v.recipes.talk.train import embed2lat_mse, encode_speech

    pipe, store = TalkPipeline.from_pretrained(tmp_path / "pipeline"), LatentStore(tmp_path / "latents")
    data = []
    for cid in store.ids[2:]:  # the held-out clip (val_fraction 0.34: every 3rd)
        c = store.clip(cid)
        mu = pipe.vae.encode(pipe.normalizer(offsets(c["ws"], cfg.latents.layers)))[0]  # (F,Z)
        data.append((encode_speech(pipe._encoder(), c["audio"]), mu.detach()))
    assert embed2lat_mse(pipe.embed2lat, data, window) == pytest.approx(best["value"], rel=1e-4)
    other = embed2lat_mse(pipe.embed2lat, data, 10 - window)
    assert abs(other - best["value"]) > 1e-4 * best["value"]


def test_paper_yaml_is_the_dataclass_defaults():
    import dataclasses

    paper = load_config(TalkConfig, REPO / "configs" / "talk" / "paper.yaml")
    assert dataclasses.replace(paper, prepare={}) == TalkConfig()
    assert (paper.invert.init, paper.embed2lat.window_frames, paper.generate.motion_scale) == ("random", 0, 500.0)
