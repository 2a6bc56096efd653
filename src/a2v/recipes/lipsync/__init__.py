"""Lip-sync recipe (Zheng et al., "A Neural Lip-Sync Framework for Synthesizing Photorealistic
Virtual News Anchors", ICPR 2020 / arXiv:2002.08700): audio -> mouth shapes -> face video."""
