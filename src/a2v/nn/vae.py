"""Fully connected variational auto-encoder (Kingma & Welling 2014) for fixed-size vectors.

    vae = MLPVAE((1536, 768, 384, 192, 96))   # talk recipe: W+ offsets of 3 layers -> 96-d code
    recon, mu, logvar = vae(x)                # x (B,1536) -> (B,1536), (B,96), (B,96)
    loss, parts = vae_loss(recon, x, mu, logvar, kl_weight=1.0)

The encoder is Linear + GELU down to the last hidden width, then two linear heads give
the posterior mean and log-variance; the decoder mirrors the encoder (GELU between layers,
no activation on the output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _mlp(dims: Sequence[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(dims) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class MLPVAE(nn.Module):
    """Gaussian VAE over float vectors (B,D) -> latent (B,Z), ``dims = (D, h1, ..., Z)``.

    ``dims`` needs at least two entries; with two, the heads map D directly to Z.
    """

    def __init__(self, dims: Sequence[int] = (1536, 768, 384, 192, 96)) -> None:
        super().__init__()
        dims = tuple(int(d) for d in dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"MLPVAE dims must be >= 2 positive widths (input, ..., latent), got {dims}")
        self.dims = dims
        self.input_dim, self.latent_dim = dims[0], dims[-1]
        self.encoder = _mlp(dims[:-1], last_activation=True) if len(dims) > 2 else nn.Identity()
        self.to_mu = nn.Linear(dims[-2], dims[-1])
        self.to_logvar = nn.Linear(dims[-2], dims[-1])
        self.decoder = _mlp(dims[::-1], last_activation=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float (...,D) -> posterior mean and log-variance, each (...,Z)."""
        h = self.encoder(x)  # (...,D)->(...,h)
        return self.to_mu(h), self.to_logvar(h)  # (...,h)->(...,Z) x2

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z float (...,Z) -> reconstruction (...,D)."""
        return self.decoder(z)  # (...,Z)->(...,D)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, eq. 10)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B,D) -> (recon (B,D), mu (B,Z), logvar (B,Z)); samples z in training mode, uses mu in eval
        mode (``sample`` overrides)."""
        mu, logvar = self.encode(x)  # (B,D)->(B,Z) x2
        z = self.reparameterize(mu, logvar) if (self.training if sample is None else sample) else mu
        return self.decode(z), mu, logvar  # (B,Z)->(B,D)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per item, summed over the latent dims: (B,Z) -> (B,).

    Closed form -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Kingma & Welling 2014, appendix B).
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def vae_loss(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MSE + kl_weight * KL: the MSE is the mean over all elements; the KL the batch mean of the per-item
    KL divided by the input width D, so both terms are per input element.

    Returns (scalar loss, {"mse": ..., "kl": ...}) (the parts detached).
    """
    mse = torch.mean((recon - x) ** 2)
    kl = kl_divergence(mu, logvar).mean() / x.shape[-1]
    loss = mse + kl_weight * kl
    return loss, {"mse": mse.detach(), "kl": kl.detach()}
