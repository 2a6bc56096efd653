"""Built-in style generator (shapes, W+ layout, modulated conv vs a per-item reference, save/load) and the
loading errors of real StyleGAN weights."""

import pytest
import torch
import torch.nn.functional as F

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.gan.stylegan import (
    ModulatedConv,
    NVLabsGenerator,
    SmallStyleGenerator,
    StyleGenerator,
    StyleGeneratorConfig,
    load_generator,
)

TINY = StyleGeneratorConfig(z_dim=16, w_dim=16, resolution_px=16, mapping_layers=2, channel_base=128, channel_max=8)


@pytest.fixture
def G():
    torch.manual_seed(0)
    return SmallStyleGenerator(TINY).eval()


def test_shapes_and_num_ws(G):
    assert isinstance(G, StyleGenerator)
    assert StyleGeneratorConfig(resolution_px=256).num_ws == 14 and TINY.num_ws == 6
    ws = G.mapping(torch.randn(3, 16))
    assert ws.shape == (3, 6, 16)
    assert torch.equal(ws[:, 0], ws[:, 5])  # one w broadcast to every row
    img = G.synthesis(ws)
    assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
    assert G.w_avg.shape == (16,)


def test_every_ws_row_changes_the_image(G):
    ws = G.mapping(torch.randn(1, 16))
    base = G.synthesis(ws)
    for i in range(G.num_ws):
        w2 = ws.clone()
        w2[:, i] += 1.0
        assert not torch.allclose(G.synthesis(w2), base), f"W+ row {i} is unused"


def test_truncation_zero_gives_w_avg(G):
    ws = G.mapping(torch.randn(2, 16), truncation_psi=0.0)
    torch.testing.assert_close(ws, G.w_avg.expand(2, 6, 16))


def test_bad_ws_shape_is_one_line_error(G):
    with pytest.raises(InputError, match=r"ws must be \(B,6,16\)"):
        G.synthesis(torch.zeros(1, 5, 16))


def test_bad_resolution_rejected():
    with pytest.raises(ConfigError):
        StyleGeneratorConfig(resolution_px=24)


@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_matches_per_item_reference(up):
    torch.manual_seed(0)
    conv = ModulatedConv(4, 5, w_dim=8, up=up)
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 8)
    out = conv(x, w)
    for b in range(2):  # StyleGAN2 eq. 1-3 for one item, with its own weights
        s = conv.affine(w[b : b + 1])[0]
        wt = conv.weight * s[None, :, None, None] / (4 * 9) ** 0.5
        wt = wt / (wt.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        xb = F.interpolate(x[b : b + 1], scale_factor=2, mode="bilinear") if up else x[b : b + 1]
        ref = F.conv2d(xb, wt, padding=1) + conv.bias[None, :, None, None]
        ref = F.leaky_relu(ref, 0.2) * 2**0.5
        torch.testing.assert_close(out[b : b + 1], ref, rtol=1e-4, atol=1e-5)


def test_save_and_load_round_trip(G, tmp_path):
    G.save_pretrained(tmp_path / "g")
    H = load_generator("builtin", tmp_path / "g")
    ws = G.mapping(torch.randn(2, 16))
    torch.testing.assert_close(H.synthesis(ws), G.synthesis(ws))
    assert H.cfg == TINY


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(MissingWeightsError, match="generator.json"):
        load_generator("builtin", tmp_path / "nothing")
    with pytest.raises(MissingWeightsError, match="stylegan3-r-ffhqu-256x256.pkl"):
        load_generator("nvlabs", tmp_path / "stylegan3-r-ffhqu-256x256.pkl")
    with pytest.raises(ConfigError):
        load_generator("other", "x")


def test_builtin_without_path_is_random(tmp_path):
    G = load_generator("builtin", "", builtin=TINY)
    assert isinstance(G, SmallStyleGenerator) and not G.training


def test_pickles_are_refused_unless_trusted(tmp_path):
    p = tmp_path / "net.pkl"
    p.write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="trust_pickle"):
        NVLabsGenerator.from_pickle(p)
    with pytest.raises(InputError, match="not a readable network pickle"):
        NVLabsGenerator.from_pickle(p, trust_pickle=True)
    with pytest.raises(InputError, match="dnnlib"):
        NVLabsGenerator.from_pickle(p, code_dir=tmp_path, trust_pickle=True)


class _FakeMapping(torch.nn.Module):
    num_ws = 4

    def __init__(self):
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(8))

    def forward(self, z, c, truncation_psi=1.0):
        return z[:, None, :8].expand(-1, 4, -1)


class _FakeSynthesis(torch.nn.Module):
    def forward(self, ws, noise_mode="random", force_fp32=False):
        assert noise_mode == "const" and force_fp32
        return ws.mean(1)[:, :3, None, None].expand(-1, 3, 8, 8)


class _FakeNVLabsG(torch.nn.Module):
    w_dim, z_dim, c_dim, img_resolution = 8, 8, 0, 8

    def __init__(self):
        super().__init__()
        self.mapping, self.synthesis = _FakeMapping(), _FakeSynthesis()


def test_nvlabs_wrapper_interface():
    G = NVLabsGenerator(_FakeNVLabsG())
    assert (G.num_ws, G.w_dim, G.z_dim, G.resolution) == (4, 8, 8, 8)
    ws = G.mapping(torch.randn(2, 8))
    assert ws.shape == (2, 4, 8) and G.synthesis(ws).shape == (2, 3, 8, 8)
    assert not any(p.requires_grad for p in G.parameters())
