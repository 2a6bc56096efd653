"""Tongue recipe: speech (+ transcript) -> ultrasound tongue imaging video (Yang et al. 2024, ICASSP).

Modules: config (settings), ultrasound (.ult/.param, sync, fan conversion), corpus (file
recognition, item names, speakers, splits, language), data (utterances, prepared folder, clips),
synthetic (a generated UltraSuite-style corpus), model (condition encoder, denoiser network, DNN
baseline), sample (cyclic window sampling), train, pipeline, evaluate, cli.
"""
