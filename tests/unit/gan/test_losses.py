"""GAN and feature-matching losses against their closed forms."""

from __future__ import annotations

import pytest
import torch

from a2v.gan.losses import discriminator_loss, feature_matching_loss, gan_loss, generator_gan_loss


def _scores(seed: int) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    # two scales, each [feature, score map]
    return [[torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 1, 6, 6, generator=g)],
            [torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 1, 3, 3, generator=g)]]


def test_lsgan_closed_form() -> None:
    real, fake = _scores(0), _scores(1)
    want_d = sum(0.5 * (((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean()) for r, f in zip(real, fake, strict=True))
    want_g = sum(((f[-1] - 1) ** 2).mean() for f in fake)
    torch.testing.assert_close(discriminator_loss(real, fake, "lsgan"), want_d)
    torch.testing.assert_close(generator_gan_loss(fake, "lsgan"), want_g)


def test_hinge_closed_form() -> None:
    real, fake = _scores(2), _scores(3)
    want_d = sum(0.5 * (torch.relu(1 - r[-1]).mean() + torch.relu(1 + f[-1]).mean()) for r, f in zip(real, fake, strict=True))
    want_g = sum(-f[-1].mean() for f in fake)
    torch.testing.assert_close(discriminator_loss(real, fake, "hinge"), want_d)
    torch.testing.assert_close(generator_gan_loss(fake, "hinge"), want_g)


def test_vanilla_closed_form_on_a_single_tensor() -> None:
    s = torch.tensor([[0.0, 2.0], [-1.0, 3.0]])
    want_real = torch.log1p(torch.exp(-s)).mean()  # -log sigmoid(s)
    want_fake = torch.log1p(torch.exp(s)).mean()  # -log(1 - sigmoid(s))
    torch.testing.assert_close(gan_loss(s, True, "vanilla"), want_real)
    torch.testing.assert_close(gan_loss(s, False, "vanilla"), want_fake)


def test_lsgan_is_zero_at_the_optimum() -> None:
    ones = [[torch.ones(1, 1, 4, 4)]]
    zeros = [[torch.zeros(1, 1, 4, 4)]]
    assert discriminator_loss(ones, zeros, "lsgan") == 0
    assert generator_gan_loss(ones, "lsgan") == 0


def test_bad_modes() -> None:
    with pytest.raises(ValueError):
        gan_loss(torch.zeros(1), True, "wgan")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gan_loss(torch.zeros(1), False, "hinge", for_discriminator=False)


def test_feature_matching_closed_form() -> None:
    """Intermediate maps of constant offset c_ij give sum_ij w |c_ij|, w = lambda * 4/(n+1) / num_D."""
    num_d, n_layers, lam = 3, 3, 10.0
    fake, real, total = [], [], 0.0
    for i in range(num_d):
        f_i, r_i = [], []
        for j in range(n_layers + 1):
            c = 0.1 * (i + 1) + 0.01 * j
            f_i.append(torch.zeros(2, 3, 5, 5))
            r_i.append(torch.full((2, 3, 5, 5), -c))
            total += c
        f_i.append(torch.full((2, 1, 4, 4), 9.0))  # score maps are not matched
        r_i.append(torch.zeros(2, 1, 4, 4))
        fake.append(f_i)
        real.append(r_i)
    want = lam * 4.0 / (n_layers + 1) / num_d * total
    got = feature_matching_loss(fake, real, n_layers, lam)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_feature_matching_gradient_reaches_fake_only() -> None:
    f = torch.randn(1, 2, 4, 4, requires_grad=True)
    r = torch.randn(1, 2, 4, 4, requires_grad=True)
    loss = feature_matching_loss([[f, torch.zeros(1, 1, 2, 2)]], [[r, torch.zeros(1, 1, 2, 2)]])
    loss.backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
    assert r.grad is None


def test_feature_matching_scale_mismatch() -> None:
    with pytest.raises(ValueError):
        feature_matching_loss(_scores(0), _scores(1)[:1])
