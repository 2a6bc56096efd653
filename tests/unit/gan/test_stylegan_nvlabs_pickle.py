"""NVlabs network pickles in their own format (persistence-protocol classes of training.networks_stylegan3,
a dnnlib.EasyDict, the snapshot dict with G_ema) load through a2v.gan.stylegan only when trusted; a bare file
name is found where `a2v info` says it is."""

from __future__ import annotations

import pickletools
import shutil
import sys
from pathlib import Path

import pytest
import torch
from nvlabs_stub import build_pickle, write_stub_code

from a2v.errors import ConfigError, InputError, MissingWeightsError
from a2v.gan.stylegan import DEFAULT_STYLEGAN_PICKLE, NVLabsGenerator, load_generator

STUB_MODULES = ("dnnlib", "torch_utils", "training", "_imported_module_")


@pytest.fixture(scope="module")
def nvlabs(tmp_path_factory):
    """(code_dir, pickle, reference tensors) made in a subprocess by the stand-in NVlabs code."""
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("nvlabs")
    code = write_stub_code(root / "stylegan3")
    build_pickle(code, root / "network-snapshot.pkl", root / "ref.safetensors")
    return code, root / "network-snapshot.pkl", load_file(str(root / "ref.safetensors"))


@pytest.fixture
def clean_imports():
    """Forget the stand-in NVlabs modules and sys.path entries a test added (each test unpickles afresh)."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in [m for m in sys.modules if m.startswith(STUB_MODULES)]:
        del sys.modules[name]


def _globals(pkl: Path) -> set[str]:
    """'module name' of every global the pickle refers to (STACK_GLOBAL takes the two strings before it)."""
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(pkl.read_bytes()):
        if isinstance(arg, str):
            strings.append(arg)
        if op.name == "STACK_GLOBAL":
            out.add(f"{strings[-2]} {strings[-1]}")
        elif op.name == "GLOBAL":
            out.add(arg)
    return out


def test_the_pickle_has_nvlabs_format(nvlabs):
    _, pkl, _ = nvlabs
    g = _globals(pkl)
    assert {"torch_utils.persistence _reconstruct_persistent_obj", "dnnlib.util EasyDict"} <= g
    assert not any("a2v" in x for x in g)
    text = pkl.read_bytes()
    assert b"from torch_utils import persistence" in text and b"class SynthesisNetwork" in text
    assert "torch_utils" not in sys.modules  # built in a subprocess


def test_loads_g_ema_with_explicit_trust(nvlabs, clean_imports):
    code, pkl, ref = nvlabs
    G = load_generator("nvlabs", pkl, code_dir=code, trust_pickle=True)
    assert isinstance(G, NVLabsGenerator) and type(G.G).__name__ == "Generator"
    assert type(G.G).__mro__[1].__module__.startswith("_imported_module_")  # rebuilt from the source in the pickle
    assert (G.num_ws, G.w_dim, G.z_dim, G.resolution, G.c_dim) == (6, 8, 8, 16, 0)
    torch.testing.assert_close(G.w_avg, ref["w_avg"])
    ws = G.mapping(ref["z"])
    torch.testing.assert_close(ws, ref["ws"])  # G_ema, not G (their weights differ)
    torch.testing.assert_close(G.synthesis(ws), ref["img"])
    assert not any(p.requires_grad for p in G.parameters())


def test_refused_without_trust_and_clear_without_code(nvlabs, clean_imports, tmp_path):
    code, pkl, _ = nvlabs
    with pytest.raises(ConfigError, match="trust_pickle"):
        load_generator("nvlabs", pkl, code_dir=code)
    assert "torch_utils" not in sys.modules  # nothing was unpickled
    with pytest.raises(InputError, match="generator.code_dir"):
        load_generator("nvlabs", pkl, trust_pickle=True)
    with pytest.raises(InputError, match="dnnlib"):
        load_generator("nvlabs", pkl, code_dir=tmp_path, trust_pickle=True)


def test_bare_name_is_found_where_info_says(nvlabs, clean_imports, tmp_path, monkeypatch):
    from a2v.info import collect_weights

    code, pkl, ref = nvlabs
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DNNLIB_CACHE_DIR", str(tmp_path / "dnnlib"))
    monkeypatch.chdir(tmp_path)
    assert not collect_weights()["StyleGAN3 FFHQ-U 256"]["available"]
    with pytest.raises(MissingWeightsError, match=DEFAULT_STYLEGAN_PICKLE) as e:
        load_generator("nvlabs", DEFAULT_STYLEGAN_PICKLE, code_dir=code, trust_pickle=True)
    assert "generator.path" in str(e.value) and str(tmp_path / "torch" / "hub" / "checkpoints") in str(e.value)

    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(pkl, hub / DEFAULT_STYLEGAN_PICKLE)
    entry = collect_weights()["StyleGAN3 FFHQ-U 256"]
    assert entry["available"] and entry["detail"] == str(hub / DEFAULT_STYLEGAN_PICKLE)
    G = load_generator("nvlabs", DEFAULT_STYLEGAN_PICKLE, code_dir=code, trust_pickle=True)
    assert G.source == entry["detail"]
    torch.testing.assert_close(G.mapping(ref["z"]), ref["ws"])

    (tmp_path / DEFAULT_STYLEGAN_PICKLE).write_bytes(pkl.read_bytes())  # the working folder comes first
    assert collect_weights()["StyleGAN3 FFHQ-U 256"]["detail"] == DEFAULT_STYLEGAN_PICKLE
    assert NVLabsGenerator.from_pickle(DEFAULT_STYLEGAN_PICKLE, code, True).source == DEFAULT_STYLEGAN_PICKLE
