"""Audio-text cross-attention fusion (Yang et al. 2024, sec. 2.2): shapes, audio-only path, text masking."""

from __future__ import annotations

import torch

from a2v.nn.fusion import CrossAttentionFusion


def _randomize(m: torch.nn.Module) -> None:
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.normal_(mod.weight, std=0.3)


def test_shapes_and_audio_only_start() -> None:
    torch.manual_seed(0)
    f = CrossAttentionFusion(audio_dim=10, text_dim=6, dim=16, heads=2)
    audio, text = torch.randn(2, 9, 10), torch.randn(2, 4, 6)
    out = f(audio, text)
    assert out.shape == (2, 9, 16) and f.uses_text
    torch.testing.assert_close(out, f(audio, None))  # zero-initialised text branch: starts audio-only
    a_only = CrossAttentionFusion(10, None, 16)
    assert not a_only.uses_text and a_only(audio).shape == (2, 9, 16)


def test_text_changes_output_and_padding_is_ignored() -> None:
    torch.manual_seed(1)
    f = CrossAttentionFusion(audio_dim=10, text_dim=6, dim=16, heads=2, layers=2).eval()
    _randomize(f)
    audio, text = torch.randn(1, 5, 10), torch.randn(1, 4, 6)
    mask = torch.tensor([[True, True, True, False]])
    out = f(audio, text, mask)
    assert (out - f(audio, None)).abs().max() > 1e-3
    text2 = text.clone()
    text2[0, 3] = 50.0
    torch.testing.assert_close(f(audio, text2, mask), out)
    out.sum().backward()
    assert f.attn[0].to_q.weight.grad is not None
