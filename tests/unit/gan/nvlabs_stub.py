"""Format-faithful NVlabs network pickles for tests, built without NVlabs' code.

NVlabs' StyleGAN2-ADA / StyleGAN3 training writes ``network-snapshot-*.pkl`` = pickle of a dict
{"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}. Every network class is decorated by
``torch_utils.persistence.persistent_class``: an instance pickles as a call of
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
meta = {"type": "class", "version": 6, "module_src": <source of the defining module, e.g.
training/networks_stylegan3.py>, "class_name": "Generator", "state": <the object's __dict__>};
unpickling execs ``module_src`` in a fresh module (which imports ``torch_utils``) and rebuilds the object.
``training_set_kwargs`` is a ``dnnlib.util.EasyDict``.

:func:`write_stub_code` writes small stand-ins of ``dnnlib``, ``torch_utils.persistence`` and
``training.networks_stylegan3`` that follow that protocol (written here, not copied: NVlabs' code is under a
non-commercial licence); :func:`build_pickle` makes a snapshot pickle with them in a subprocess, so the test
process never imports them unless it unpickles the file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

DNNLIB_UTIL = '''
class EasyDict(dict):
    """dict with attribute access, as dnnlib.util.EasyDict."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value
'''

PERSISTENCE = '''
"""Stand-in of NVlabs' torch_utils.persistence: same pickle protocol (version 6 meta dicts)."""
import inspect
import sys
import types
import uuid

import dnnlib

_version = 6
_decorators = set()
_src_modules = {}


def persistent_class(orig_class):
    if orig_class in _decorators:
        return orig_class
    module = sys.modules[orig_class.__module__]
    src = getattr(module, "__persistent_src__", None) or inspect.getsource(module)

    class Decorator(orig_class):
        _orig_module_src = src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args, self._init_kwargs = args, kwargs

        def __reduce__(self):
            fields = list(super().__reduce__()) + [None, None, None]
            meta = dict(type="class", version=_version, module_src=self._orig_module_src,
                        class_name=self._orig_class_name, state=fields[2])
            return (_reconstruct_persistent_obj, (meta,), None) + tuple(fields[3:5])

    Decorator.__name__ = orig_class.__name__
    _decorators.add(Decorator)
    return Decorator


def _reconstruct_persistent_obj(meta):
    meta = dnnlib.EasyDict(meta)
    assert meta.version == _version and meta.type == "class"
    module = _src_modules.get(meta.module_src)
    if module is None:
        module = types.ModuleType("_imported_module_" + uuid.uuid4().hex)
        module.__persistent_src__ = meta.module_src
        sys.modules[module.__name__] = module
        _src_modules[meta.module_src] = module
        exec(meta.module_src, module.__dict__)
    cls = persistent_class(module.__dict__[meta.class_name])
    obj = cls.__new__(cls)
    obj.__setstate__(dict(meta.state))
    return obj
'''

NETWORKS = '''
"""Stand-in of NVlabs' training/networks_stylegan3.py: the attributes and call signatures of its Generator,
MappingNetwork and SynthesisNetwork (a linear synthesis instead of the alias-free layers)."""
import numpy as np
import torch
from torch_utils import persistence


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        self.fc0 = torch.nn.Linear(z_dim + c_dim, w_dim)
        self.fc1 = torch.nn.Linear(w_dim, w_dim)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim:
            x = torch.cat([x, c], dim=1)
        x = self.fc1(torch.nn.functional.leaky_relu(self.fc0(x), 0.2))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, num_layers=4, **unused):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.layer_names = [f"L{i}" for i in range(num_layers)]
        self.out = torch.nn.Linear(self.num_ws * w_dim, img_channels * img_resolution**2)

    def forward(self, ws, **layer_kwargs):
        assert ws.shape[1:] == (self.num_ws, self.w_dim), ws.shape
        assert set(layer_kwargs) <= {"noise_mode", "force_fp32", "update_emas"}, layer_kwargs
        x = self.out(ws.to(torch.float32).flatten(1))
        return torch.tanh(x).reshape(-1, self.img_channels, self.img_resolution, self.img_resolution)


@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
'''

BUILD = '''
import copy, pickle, sys
import torch
sys.path.insert(0, sys.argv[1])
import dnnlib
from training import networks_stylegan3
from safetensors.torch import save_file

torch.manual_seed(0)
G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3)
with torch.no_grad():
    G.mapping.w_avg.copy_(torch.randn(8))
G_ema = copy.deepcopy(G).eval().requires_grad_(False)
with torch.no_grad():
    for p in G_ema.parameters():
        p.add_(0.5 * torch.randn_like(p))  # G_ema differs from G: the loader must take G_ema
data = dict(G=G, D=None, G_ema=G_ema, augment_pipe=None,
            training_set_kwargs=dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset", resolution=16))
with open(sys.argv[2], "wb") as f:
    pickle.dump(data, f)
z = torch.randn(3, 8)
with torch.no_grad():
    ws = G_ema.mapping(z, torch.zeros(3, 0))
    img = G_ema.synthesis(ws, noise_mode="const", force_fp32=True)
save_file({"z": z, "ws": ws.contiguous(), "img": img.contiguous(), "w_avg": G_ema.mapping.w_avg.clone()}, sys.argv[3])
'''


def write_stub_code(root: Path) -> Path:
    """A folder laid out like a checkout of NVlabs/stylegan3 (dnnlib/, torch_utils/, training/)."""
    files = {"dnnlib/__init__.py": "from .util import EasyDict\n", "dnnlib/util.py": DNNLIB_UTIL,
             "torch_utils/__init__.py": "", "torch_utils/persistence.py": PERSISTENCE,
             "training/__init__.py": "", "training/networks_stylegan3.py": NETWORKS}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def build_pickle(code_dir: Path, pkl: Path, ref: Path) -> None:
    """Write a snapshot pickle ``pkl`` made with the stub code and ``ref`` (safetensors: z, ws, img, w_avg of
    G_ema, computed by the stub code itself)."""
    subprocess.run([sys.executable, "-c", BUILD, str(code_dir), str(pkl), str(ref)], check=True,
                   capture_output=True, text=True, timeout=300)
