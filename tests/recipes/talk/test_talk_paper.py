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
