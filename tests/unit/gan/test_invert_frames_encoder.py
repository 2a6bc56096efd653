"""W+ inversion batched over frames (later_init="first") against per-frame reference runs, and encoder
initialisation from a torch.export archive (a2v.gan.invert.LatentEncoder)."""

import pytest
import torch

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.gan.invert import LatentEncoder, ReconstructionLoss, invert_sequences, optimize_ws
from a2v.gan.stylegan import SmallStyleGenerator, StyleGeneratorConfig

TINY = StyleGeneratorConfig(z_dim=16, w_dim=16, resolution_px=16, mapping_layers=2, channel_base=128, channel_max=8)
MSE = ReconstructionLoss(None, lpips_weight=0.0)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return SmallStyleGenerator(TINY).eval().requires_grad_(False)


def _clip(G, n, seed):
    with torch.no_grad():
        ws = G.mapping(torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)))  # (n,num_ws,w_dim)
        return G.synthesis(ws), ws


def test_later_frames_from_the_first_frame_match_separate_runs(G):
    a, _ = _clip(G, 4, 1)
    b, _ = _clip(G, 3, 2)
    kw = dict(first_steps=3, later_steps=4, later_lr=0.01, later_init="first", progress=False)
    res = invert_sequences(G, [a, b], MSE, max_batch=64, **kw)
    for clip, r in zip([a, b], res, strict=True):  # reference: each later frame alone, from frame 0's solution
        for f in range(1, clip.shape[0]):
            one = optimize_ws(G.synthesis, clip[f : f + 1], r.ws[0:1], 4, 0.01, MSE)
            torch.testing.assert_close(r.ws[f : f + 1], one.ws, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(r.loss[f : f + 1], one.loss, rtol=1e-4, atol=1e-6)
    small = invert_sequences(G, [a, b], MSE, max_batch=2, **kw)  # chunks of 2 images: same result
    for r, s in zip(res, small, strict=True):
        torch.testing.assert_close(r.ws, s.ws, rtol=1e-4, atol=1e-5)
    chain = invert_sequences(G, [a, b], MSE, **{**kw, "later_init": "previous"})
    assert not torch.allclose(chain[0].ws[3], res[0].ws[3])  # the chain starts frame 3 from frame 2
    torch.testing.assert_close(chain[0].ws[1], res[0].ws[1])  # ... and frame 1 from frame 0 in both
    with pytest.raises(ValueError, match="later_init"):
        invert_sequences(G, [a], MSE, later_init="middle", progress=False)


class _Lookup(torch.nn.Module):
    def __init__(self, images01, ws):
        super().__init__()
        self.register_buffer("images", images01)
        self.register_buffer("ws", ws)

    def forward(self, x):
        return self.ws[(self.images - x).pow(2).flatten(1).sum(1).argmin()][None]


def test_encoder_from_torch_export_starts_near_the_solution(G, tmp_path):
    imgs, ws = _clip(G, 3, 5)
    path = tmp_path / "enc.pt2"
    torch.export.save(torch.export.export(_Lookup((imgs + 1) / 2, ws), (imgs[:1],)), str(path))
    enc = LatentEncoder.load(path, G.num_ws, G.w_dim, trust=True)
    torch.testing.assert_close(enc(imgs[[2, 0]]), ws[[2, 0]])  # [-1,1] images in, true codes out
    mean = G.w_avg[None, None].expand(3, G.num_ws, -1)
    from_mean = optimize_ws(G.synthesis, imgs, mean, 2, 0.02, MSE)
    from_enc = optimize_ws(G.synthesis, imgs, enc(imgs), 2, 0.02, MSE)
    assert from_enc.history[0] < 1e-6 < 0.1 * from_mean.history[0]  # loss at step 0
    res = invert_sequences(G, [imgs], MSE, first_steps=1, first_lr=1e-9, first_lr_final=None, later_steps=0,
                           init=enc, progress=False)
    assert res[0].loss[0] < 1e-6

    with pytest.raises(MissingWeightsError, match="nothing.pt2"):
        LatentEncoder.load(tmp_path / "nothing.pt2", G.num_ws, G.w_dim, trust=True)
    with pytest.raises(ConfigError, match="trust_encoder"):
        LatentEncoder.load(path, G.num_ws, G.w_dim)
    with pytest.raises(InputError, match="shape"):
        LatentEncoder.load(path, G.num_ws + 1, G.w_dim, trust=True)(imgs[:1])
