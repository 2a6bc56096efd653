"""Pictures from an audio embedding: VQGAN latent optimisation (:mod:`.vqgan`)."""

from a2v.recipes.image.generate.vqgan import build_vq, latent_hw, optimise_latents

__all__ = ["build_vq", "latent_hw", "optimise_latents"]
