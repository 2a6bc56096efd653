"""Recipe ``image``: any sound -> a picture (WavBriVL, Fang et al. 2023; Wav2CLIP baseline).

A WavLM audio encoder is trained contrastively (BriVL's momentum contrast with two queues) against
a frozen image tower; pictures come from optimising VQGAN latents toward the audio embedding.
Entry points: :class:`a2v.recipes.image.pipeline.ImagePipeline`, :func:`a2v.recipes.image.train.train`,
``a2v image train|generate|evaluate`` and ``a2v prepare image``.
"""
