from dataclasses import dataclass, field
from typing import Literal

import pytest

from a2v.config import from_dict, load_config, parse_overrides, replace, to_dict
from a2v.errors import ConfigError


@dataclass(frozen=True)
class Audio:
    sample_rate_hz: int = 16000
    hop_ms: float = 10.0


@dataclass(frozen=True)
class Cfg:
    audio: Audio = field(default_factory=Audio)
    lr: float = 1e-3
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    loss: Literal["lsgan", "hinge"] = "lsgan"
    name: str = "run"
    weights: str | None = None
    ema: bool = True


def test_defaults_yaml_and_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("audio:\n  sample_rate_hz: 22050\nlr: 1e-4\ndilations: [1, 3]\n")
    cfg = load_config(Cfg, y, ["audio.hop_ms=12.5", "loss=hinge", "weights=/m"])
    assert cfg.audio == Audio(22050, 12.5)
    assert cfg.lr == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as a string; coerced
    assert cfg.dilations == (1, 3) and cfg.loss == "hinge" and cfg.weights == "/m"
    assert cfg.ema is True


def test_round_trip_dict():
    cfg = Cfg(lr=0.5, dilations=(2,))
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    assert replace(cfg, ["audio.sample_rate_hz=8000"]).audio.sample_rate_hz == 8000


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("audio.rate=1", "unknown config key 'audio.rate'"),
        ("lrr=1", "unknown config key 'lrr'"),
        ("lr=fast", "'lr' must be a number"),
        ("audio.sample_rate_hz=1.5", "'audio.sample_rate_hz' must be an integer"),
        ("loss=l2", "must be one of"),
        ("ema=maybe", "must be true or false"),
        ("audio=3", "must be a mapping"),
        ("novalue", "key=value"),
    ],
)
def test_bad_values_raise_one_line(override, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")) as ei:
        load_config(Cfg, None, [override])
    assert "\n" not in str(ei.value)


def test_bad_yaml_names_file_and_line(tmp_path):
    y = tmp_path / "bad.yaml"
    y.write_text("lr: [1,\n  audio: }\n")
    with pytest.raises(ConfigError, match=r"bad YAML in .*bad\.yaml at line"):
        load_config(Cfg, y)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "missing.yaml")
    y.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Cfg, y)


def test_parse_overrides_nested():
    assert parse_overrides(["a.b.c=1", "a.d=[1, 2]", "e=x"]) == {"a": {"b": {"c": 1}, "d": [1, 2]}, "e": "x"}


def test_partial_nested_section_keeps_the_outer_default_factory(tmp_path):
    from dataclasses import dataclass, field

    from a2v.config import load_config

    @dataclass(frozen=True)
    class Inner:
        lr: float = 1.0
        batch: int = 1

    @dataclass(frozen=True)
    class Outer:
        inner: Inner = field(default_factory=lambda: Inner(lr=0.5, batch=64))

    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  lr: 0.1\n")
    cfg = load_config(Outer, path)
    assert cfg.inner == Inner(lr=0.1, batch=64)
    assert load_config(Outer, None, ["inner.batch=8"]).inner == Inner(lr=0.5, batch=8)
