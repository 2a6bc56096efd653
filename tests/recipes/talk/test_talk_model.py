"""Embed2Lat: shapes, masking, a tiny overfit."""

import pytest
import torch

from a2v.recipes.talk.config import Embed2LatSettings
from a2v.recipes.talk.model import Embed2Lat

SMALL = Embed2LatSettings(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, conv_pos_kernel=8,
                          conv_pos_groups=2, dropout=0.0)


def test_shapes():
    torch.manual_seed(0)
    net = Embed2Lat(SMALL, in_dim=12, code_dim=5).eval()
    out = net(torch.randn(3, 20, 12), n_frames=10)
    assert out.shape == (3, 10, 5)
    assert net(torch.randn(1, 7, 12), n_frames=4).shape == (1, 4, 5)
    with pytest.raises(ValueError, match=r"\(B,T,12\)"):
        net(torch.randn(3, 20, 11), n_frames=10)


def test_masked_steps_do_not_change_valid_outputs_of_the_encoder():
    torch.manual_seed(0)
    net = Embed2Lat(SMALL, in_dim=6, code_dim=3).eval()
    x = torch.randn(1, 16, 6)
    padded = torch.cat([x, torch.randn(1, 8, 6)], 1)  # (1,24,6) with garbage after step 16
    mask = torch.arange(24)[None] < 16
    with torch.no_grad():
        h_pad = net.encoder(net.proj(padded), attention_mask=mask).last_hidden_state[:, :16]
        h = net.encoder(net.proj(x)).last_hidden_state
    torch.testing.assert_close(h_pad, h, rtol=1e-4, atol=1e-5)


def test_overfits_a_tiny_task():
    g = torch.Generator().manual_seed(0)
    feats, codes = torch.randn(4, 20, 8, generator=g), torch.randn(4, 10, 3, generator=g)
    torch.manual_seed(0)
    net = Embed2Lat(SMALL, in_dim=8, code_dim=3)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = (net(feats, 10) - codes).pow(2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
