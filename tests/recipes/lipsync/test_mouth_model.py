"""Stage 1 networks: shapes for every arch, input checks, alignment and look-ahead."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from a2v.errors import ConfigError, InputError
from a2v.recipes.lipsync.mouth_model import (
    BiLSTM,
    MouthDiscriminator,
    MouthGenerator,
    MouthModelConfig,
    TimeDelayedLSTM,
    build_discriminator,
    build_generator,
)

TINY = dict(channels=8, fc_hidden=8, dilations=(1, 2), disc_channels=8, disc_dilations=(1,), lstm_hidden=8)


def tiny(**kw) -> MouthModelConfig:
    return MouthModelConfig(**{**TINY, **kw})


@pytest.mark.parametrize(
    ("arch", "cls"),
    [("tcn_gan", MouthGenerator), ("tcn", MouthGenerator), ("lstm", TimeDelayedLSTM), ("bilstm", BiLSTM)],
)
@pytest.mark.parametrize("t", [200, 4, 36])
def test_generator_shapes(arch: str, cls: type, t: int) -> None:
    g = build_generator(tiny(arch=arch, time_delay_frames=8))
    assert isinstance(g, cls)
    assert g(torch.randn(3, t, 13)).shape == (3, t // 4, 10)


def test_discriminator_only_for_gan_and_shapes() -> None:
    assert build_discriminator(tiny(arch="tcn")) is None
    d = build_discriminator(tiny(arch="tcn_gan"))
    assert isinstance(d, MouthDiscriminator)
    x, m = torch.randn(2, 200, 13), torch.randn(2, 50, 10)
    assert d(x, m).shape == (2, 1)
    assert MouthDiscriminator(tiny(disc_logits="frame"))(x, m).shape == (2, 50)
    with pytest.raises(InputError, match=r"\(B,50,10\)"):
        d(x, torch.randn(2, 49, 10))


@pytest.mark.parametrize("arch", ["tcn", "lstm", "bilstm"])
def test_bad_input_raises_one_clear_error(arch: str) -> None:
    g = build_generator(tiny(arch=arch))
    with pytest.raises(InputError, match="multiple of 4"):
        g(torch.randn(1, 201, 13))
    with pytest.raises(InputError, match=r"\(B,T,13\)"):
        g(torch.randn(1, 200, 12))


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="4 x window_video_frames"):
        MouthModelConfig(window_audio_frames=200, window_video_frames=40)
    with pytest.raises(ConfigError, match="audio_rate_hz"):
        MouthModelConfig(video_fps=30.0)
    with pytest.raises(ConfigError, match="time_delay_frames"):
        MouthModelConfig(time_delay_frames=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MouthModelConfig().arch = "tcn"  # type: ignore[misc]


def test_paper_generator_layout() -> None:
    g = MouthGenerator(MouthModelConfig())
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]
    outside_tcn = [
        m for n, m in g.named_modules() if isinstance(m, torch.nn.Conv1d) and not n.startswith("tcn")
    ]
    assert len(outside_tcn) == 4  # four 1-D convolutions around the TCN
    assert sum(isinstance(m, torch.nn.Linear) for m in g.modules()) == 2  # two FC layers
    assert [m.stride[0] for m in outside_tcn] == [1, 2, 2, 1]
    assert g.tcn.dilations == (1, 2, 4, 8) and all(c.out_channels == 256 for c in convs[:-1])
    assert g.receptive_field_audio_frames == 260


def _positive(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.1 + 0.05)


@pytest.mark.parametrize("dilations", [(1,), (1, 2, 4)])
def test_generator_audio_span_matches_impulse_response(dilations) -> None:
    g = MouthGenerator(tiny(dilations=dilations)).double()
    _positive(g)  # every activation positive: no dead ReLU hides a tap
    x = (torch.rand(1, 400, 13, dtype=torch.float64) + 0.1).requires_grad_(True)
    f = 50
    g(x)[0, f].sum().backward()
    hit = (x.grad[0].abs().sum(1) > 0).nonzero().flatten()
    assert (int(hit.min()), int(hit.max())) == g.audio_span(f)
    first, last = g.audio_span(f)
    assert (first + last) / 2 == 4 * f + 1.5  # centred on the frame's own 4 audio frames


def test_time_delayed_lstm_sees_exactly_d_frames_ahead() -> None:
    torch.manual_seed(0)
    d = 8
    g = TimeDelayedLSTM(tiny(arch="lstm", time_delay_frames=d)).eval()
    x = torch.randn(1, 80, 13)
    y = g(x)
    f = 10  # frame f hears audio <= 4f + 3 + d = 51
    x2 = x.clone()
    x2[:, 4 * f + 4 + d :] = torch.randn(1, 80 - (4 * f + 4 + d), 13)
    torch.testing.assert_close(g(x2)[:, : f + 1], y[:, : f + 1])
    x3 = x.clone()
    x3[:, 4 * f + 3 + d] += 1.0
    assert not torch.allclose(g(x3)[:, f], y[:, f])
