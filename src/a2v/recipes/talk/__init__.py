"""Talk recipe ("Natural audio-to-video generation with representation learning"): one face photo + speech
-> talking-face video through StyleGAN W+ latents, a VAE on latent offsets and Embed2Lat (wav2vec2 -> codes).

Modules: config, data (prepared clips, latent store, offsets), model (Embed2Lat), train (stages invert / vae /
embed2lat), pipeline (TalkPipeline), evaluate, cli (``a2v talk``).
"""
