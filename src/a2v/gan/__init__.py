"""GAN parts shared by recipes: pix2pixHD generators, multi-scale discriminators, adversarial,
feature-matching and VGG perceptual losses.

Modules: :mod:`a2v.gan.pix2pixhd` (GlobalGenerator, LocalEnhancer), :mod:`a2v.gan.discriminators`
(PatchGAN, multi-scale), :mod:`a2v.gan.losses` (LSGAN / hinge / vanilla, feature matching),
:mod:`a2v.gan.perceptual` (VGG19 loss, weights read from disk only).
"""
