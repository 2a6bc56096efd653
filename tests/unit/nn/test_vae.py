"""MLPVAE: shapes, closed-form KL against torch.distributions, a tiny reconstruction task."""

import pytest
import torch

from a2v.nn.vae import MLPVAE, kl_divergence, vae_loss


def test_shapes_and_eval_mode_uses_the_mean():
    vae = MLPVAE((12, 8, 6, 3))
    x = torch.randn(5, 12)
    recon, mu, logvar = vae(x)
    assert recon.shape == (5, 12) and mu.shape == (5, 3) and logvar.shape == (5, 3)
    vae.eval()
    a, _, _ = vae(x)
    b, _, _ = vae(x)
    assert torch.equal(a, b)  # no sampling in eval mode
    assert torch.allclose(a, vae.decode(vae.encode(x)[0]))
    vae.train()
    c, _, _ = vae(x)
    assert not torch.allclose(a, c)  # sampled z in training mode


def test_two_widths_map_input_straight_to_the_latent():
    vae = MLPVAE((4, 2))
    assert isinstance(vae.encoder, torch.nn.Identity)
    assert vae(torch.randn(3, 4))[0].shape == (3, 4)


@pytest.mark.parametrize("dims", [(4,), (4, 0), ()])
def test_bad_dims_raise(dims):
    with pytest.raises(ValueError):
        MLPVAE(dims)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_divergence(mu, logvar), ref)
    assert torch.allclose(kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_vae_loss_parts():
    x, recon = torch.ones(4, 6), torch.zeros(4, 6)
    mu, logvar = torch.ones(4, 2), torch.zeros(4, 2)
    loss, parts = vae_loss(recon, x, mu, logvar, kl_weight=0.5)
    assert parts["mse"] == pytest.approx(1.0)
    assert parts["kl"] == pytest.approx(1.0 / 6)  # per item 0.5 * 2 * 1 = 1, divided by D = 6
    assert loss.item() == pytest.approx(1.0 + 0.5 / 6)


def test_reconstructs_a_low_dimensional_task():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 16, generator=g)
    x = torch.tanh(torch.randn(128, 2, generator=g) @ A)  # a 2-d manifold in 16-d
    torch.manual_seed(0)
    vae = MLPVAE((16, 32, 2))
    opt = torch.optim.Adam(vae.parameters(), lr=2e-2)
    for _ in range(150):
        recon, mu, logvar = vae(x)
        loss, _ = vae_loss(recon, x, mu, logvar, kl_weight=0.01)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    with torch.no_grad():
        err = (vae(x)[0] - x).pow(2).mean()
    assert err < 0.1 * x.var()
