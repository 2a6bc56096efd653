"""W+ inversion: the loss drops on an image the generator made; a batch equals separate runs; the sequence
schedule warm-starts later frames; the reconstruction loss combines MSE and LPIPS per item."""

import pytest
import torch

from a2v.gan.invert import ReconstructionLoss, invert_sequences, optimize_ws
from a2v.gan.stylegan import SmallStyleGenerator, StyleGeneratorConfig

TINY = StyleGeneratorConfig(z_dim=16, w_dim=16, resolution_px=16, mapping_layers=2, channel_base=128, channel_max=8)
MSE = ReconstructionLoss(None, lpips_weight=0.0)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return SmallStyleGenerator(TINY).eval().requires_grad_(False)


def _targets(G, n, seed=1):
    with torch.no_grad():
        ws = G.mapping(torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)))
        return G.synthesis(ws), ws


def test_inversion_lowers_the_loss_on_a_generated_image(G):
    target, _ = _targets(G, 1)
    init = G.w_avg[None, None].expand(1, G.num_ws, -1)
    res = optimize_ws(G.synthesis, target, init, steps=60, lr=0.05, loss_fn=MSE, lr_final=0.02)
    assert len(res.history) == 60
    assert res.loss.shape == (1,) and res.ws.shape == (1, G.num_ws, 16)
    assert res.loss.item() < 0.3 * res.history[0]
    assert not res.ws.requires_grad


def test_batch_equals_separate_runs(G):
    target, _ = _targets(G, 2)
    init = G.w_avg[None, None].expand(2, G.num_ws, -1)
    both = optimize_ws(G.synthesis, target, init, steps=5, lr=0.05, loss_fn=MSE)
    for i in range(2):
        one = optimize_ws(G.synthesis, target[i : i + 1], init[i : i + 1], steps=5, lr=0.05, loss_fn=MSE)
        torch.testing.assert_close(both.ws[i : i + 1], one.ws, rtol=1e-4, atol=1e-5)


def test_sequences_shapes_and_warm_start(G):
    a, _ = _targets(G, 3, seed=2)
    b, _ = _targets(G, 2, seed=3)
    res = invert_sequences(G, [a, b], MSE, first_steps=4, later_steps=0, progress=False)
    assert [r.ws.shape for r in res] == [(3, G.num_ws, 16), (2, G.num_ws, 16)]
    assert [r.loss.shape for r in res] == [(3,), (2,)]
    for r in res:  # no later steps: every frame keeps the first frame's solution
        assert torch.equal(r.ws[1], r.ws[0]) and torch.equal(r.ws[-1], r.ws[0])
    res2 = invert_sequences(G, [a, b], MSE, first_steps=4, later_steps=3, progress=False, max_batch=1)
    assert not torch.equal(res2[0].ws[1], res2[0].ws[0])
    torch.testing.assert_close(res2[0].ws[0], res[0].ws[0])  # same first-frame optimisation


def test_sequence_init_tensor_and_encoder(G):
    a, ws_true = _targets(G, 2, seed=4)
    res = invert_sequences(G, [a], MSE, first_steps=1, first_lr=1e-9, first_lr_final=None, later_steps=0, init=ws_true[:1], progress=False)
    assert res[0].loss[0] < 1e-8  # started at the true code
    enc = lambda imgs: ws_true[: imgs.shape[0]]  # noqa: E731 - an "encoder" returning the right codes
    res = invert_sequences(G, [a], MSE, first_steps=1, first_lr=1e-9, first_lr_final=None, later_steps=0, init=enc, progress=False)
    assert res[0].loss[0] < 1e-8
    with pytest.raises(ValueError, match="init must give"):
        invert_sequences(G, [a], MSE, first_steps=1, init=ws_true, progress=False)


class _ConstLPIPS(torch.nn.Module):
    def forward(self, x, y, normalize=False):
        assert not normalize
        return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)


def test_reconstruction_loss_combines_mse_and_lpips():
    x, y = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    y[1] = 0.5
    loss = ReconstructionLoss(_ConstLPIPS(), mse_weight=1.0, lpips_weight=10.0)(x, y)
    torch.testing.assert_close(loss, torch.tensor([1.0 + 10.0, 0.25 + 5.0]))
    with pytest.raises(ValueError):
        ReconstructionLoss(None, lpips_weight=1.0)
