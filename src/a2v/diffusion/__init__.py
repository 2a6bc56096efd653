"""Diffusion core shared by the recipes: network / preconditioning + loss / sampler kept apart.

- :mod:`a2v.diffusion.edm`: EDM preconditioning (:class:`EDMPrecond`), loss (:class:`EDMLoss`),
  cascade noise augmentation (Karras et al. 2022).
- :mod:`a2v.diffusion.samplers`: pure sampler functions ``sample_heun(denoiser, x, sigmas, cond=None,
  generator=None)`` and the Karras noise schedule.
- :mod:`a2v.diffusion.guidance`: classifier-free guidance (null condition, dropout, guided denoiser).
- :mod:`a2v.diffusion.ddpm`: DDPM training loss and sampling on diffusers schedulers (import it
  explicitly; it imports diffusers).
"""

from a2v.diffusion.edm import EDMLoss, EDMPrecond, augment_condition, random_aug_sigma
from a2v.diffusion.guidance import guided_denoiser, scale_from_w
from a2v.diffusion.samplers import (
    karras_sigmas,
    prior_sample,
    sample_euler,
    sample_heun,
    sample_heun_stochastic,
)

__all__ = [
    "EDMLoss",
    "EDMPrecond",
    "augment_condition",
    "random_aug_sigma",
    "guided_denoiser",
    "scale_from_w",
    "karras_sigmas",
    "prior_sample",
    "sample_euler",
    "sample_heun",
    "sample_heun_stochastic",
]
