from __future__ import annotations

import numpy as np
import pytest

from a2v.encoders import FeatureCache
from a2v.encoders.cache import default_cache_dir
from a2v.errors import InputError


class Counter:
    """fn for get_or_compute that counts its calls and returns a fresh random array."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return np.random.default_rng(self.calls).standard_normal((7, 4)).astype(np.float32)


def test_hit_returns_identical_array_without_recomputing(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF fake audio bytes")
    cache, fn = FeatureCache(tmp_path / "c"), Counter()
    a = cache.get_or_compute(audio, "facebook/wav2vec2-base", "last", fn)
    b = cache.get_or_compute(audio, "facebook/wav2vec2-base", "last", fn)
    assert fn.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
    assert FeatureCache(tmp_path / "c").get_or_compute(audio, "facebook/wav2vec2-base", "last", fn) is not None
    assert fn.calls == 1  # a new cache object on the same root reads the stored file
    files = list((tmp_path / "c").rglob("*"))
    assert [f.suffix for f in files if f.is_file()] == [".npy"]  # no temporary left behind


def test_key_depends_on_content_model_layer_and_params(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"first version")
    cache, fn = FeatureCache(tmp_path / "c"), Counter()
    k0 = cache.key(audio, "m", "last")
    assert cache.key(audio, "m", 3) != k0 and cache.key(audio, "other", "last") != k0
    assert cache.key(audio, "m", "last", {"chunk_s": 30}) != k0
    assert cache.key(audio, "m", "last", {"a": 1, "b": 2}) == cache.key(audio, "m", "last", {"b": 2, "a": 1})
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(audio.read_bytes())
    assert cache.key(copy, "m", "last") == k0  # content-addressed: the name does not matter
    first = cache.get_or_compute(audio, "m", "last", fn)
    audio.write_bytes(b"second version, longer")
    assert cache.key(audio, "m", "last") != k0
    second = cache.get_or_compute(audio, "m", "last", fn)
    assert fn.calls == 2 and not np.array_equal(first, second)


def test_corrupt_entry_is_recomputed_and_torch_values_accepted(tmp_path):
    import torch

    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x" * 100)
    cache = FeatureCache(tmp_path / "c")
    path = cache.path_for(cache.key(audio, "m", "last"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x93NUMPY truncated")
    out = cache.get_or_compute(audio, "m", "last", lambda: torch.ones(3, 2))
    assert isinstance(out, np.ndarray) and out.shape == (3, 2) and cache.misses == 1
    assert np.array_equal(np.load(path), out)


def test_default_root_from_env_and_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("A2V_CACHE_DIR", str(tmp_path / "env-cache"))
    assert FeatureCache().root == tmp_path / "env-cache" == default_cache_dir()
    monkeypatch.delenv("A2V_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "a2v", "features")
    with pytest.raises(InputError, match="not found"):
        FeatureCache(tmp_path).get_or_compute(tmp_path / "absent.wav", "m", "last", Counter())
