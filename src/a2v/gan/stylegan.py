"""Style-based generators behind one interface: NVlabs StyleGAN2/3 pickles and a small built-in one.

Interface (:class:`StyleGenerator`), shared by both:

- ``mapping(z float (B,z_dim), c=None, truncation_psi=1.0) -> ws float (B,num_ws,w_dim)`` (W+)
- ``synthesis(ws float (B,num_ws,w_dim)) -> img float (B,3,H,W)``, nominally in [-1, 1] (not
  clamped, as in NVlabs' code), H = W = ``resolution``
- ``num_ws``, ``w_dim``, ``z_dim``, ``resolution`` (px) and ``w_avg`` float (w_dim,), the mean
  of the mapping output (the usual start of a GAN inversion).

NVlabs networks (StyleGAN2-ADA-PyTorch, StyleGAN3) exist only as pickles that reference
their own Python code (``dnnlib``, ``torch_utils``): :meth:`NVLabsGenerator.from_pickle`
puts that code folder on ``sys.path`` and unpickles the file. Unpickling runs code from
the file, so it is refused unless the caller says the file is trusted
(``trust_pickle=True``); load only pickles from a source you trust (e.g. NVlabs' own).

:class:`SmallStyleGenerator` is a small StyleGAN2-like network (Karras et al. 2020,
"Analyzing and Improving the Image Quality of StyleGAN"): a mapping MLP, a learned 4x4
constant, modulated 3x3 convolutions with weight demodulation (eq. 1-3), equalised learning
rate and skip-connection RGB outputs. It is trainable and small enough for CPU tests; it saves
as ``generator.json`` + ``generator.safetensors`` (:meth:`SmallStyleGenerator.save_pretrained`).
:func:`load_generator` builds either kind from a config (kind, path).
Simplifications (written by hand since no maintained package provides a StyleGAN
generator as a library): bilinear upsampling instead of the FIR-filtered transposed
convolution, and no noise inputs (synthesis is deterministic, like NVlabs' ``noise_mode='const'``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import ConfigError, InputError, MissingWeightsError

DEFAULT_STYLEGAN_PICKLE = "stylegan3-r-ffhqu-256x256.pkl"


@runtime_checkable
class StyleGenerator(Protocol):
    """What GAN inversion and the talk recipe need from a style-based generator."""

    num_ws: int
    w_dim: int
    z_dim: int
    resolution: int

    @property
    def w_avg(self) -> torch.Tensor: ...

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor: ...


# ---------------------------------------------------------------------------------------------
# NVlabs pickles


class NVLabsGenerator(nn.Module):
    """Wraps an NVlabs StyleGAN2-ADA / StyleGAN3 ``G`` (``G.mapping``, ``G.synthesis``) as a :class:`StyleGenerator`.

    The weights are frozen (``requires_grad=False``); gradients still flow to ``ws``.
    """

    def __init__(self, G: nn.Module, source: str = "") -> None:
        super().__init__()
        self.G = G.eval().requires_grad_(False)
        self.num_ws = int(G.mapping.num_ws)
        self.w_dim, self.z_dim = int(G.w_dim), int(G.z_dim)
        self.c_dim = int(getattr(G, "c_dim", 0))
        self.resolution = int(G.img_resolution)
        self.source = source

    @property
    def w_avg(self) -> torch.Tensor:
        return self.G.mapping.w_avg  # (w_dim,)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        if c is None:
            c = torch.zeros(z.shape[0], self.c_dim, device=z.device)  # (B,0) for unconditional networks
        return self.G.mapping(z, c, truncation_psi=truncation_psi)  # (B,z_dim)->(B,num_ws,w_dim)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode="const", force_fp32=True)  # (B,num_ws,w_dim)->(B,3,H,W)

    @classmethod
    def from_pickle(
        cls,
        path: str | Path,
        code_dir: str | Path | None = None,
        trust_pickle: bool = False,
        key: str = "G_ema",
        device: str | torch.device = "cpu",
    ) -> NVLabsGenerator:
        """Load ``G_ema`` from an NVlabs network pickle (e.g. ``stylegan3-r-ffhqu-256x256.pkl``).

        path: a file, or a bare file name looked up as :mod:`a2v.weight_files` says (working folder, then the
        torch hub checkpoint folder, then NVlabs' download cache), the rule ``a2v info`` reports with.
        code_dir: a checkout of NVlabs/stylegan3 or stylegan2-ada-pytorch (holds ``dnnlib/`` and
        ``torch_utils/``), put on ``sys.path``. trust_pickle must be True: unpickling runs code
        from the file, so load only files from a source you trust.
        """
        from a2v.weight_files import resolve_weight_file

        p = resolve_weight_file(path, what=f"StyleGAN network pickle (e.g. NVlabs' {DEFAULT_STYLEGAN_PICKLE})",
                                key="generator.path")
        if not trust_pickle:
            raise ConfigError(
                f"refusing to unpickle {p}: pickles run code when loaded; if you trust this file set "
                "generator.trust_pickle=true"
            )
        if code_dir:
            cd = Path(code_dir).expanduser().resolve()
            if not (cd / "torch_utils").is_dir() and not (cd / "dnnlib").is_dir():
                raise InputError(f"{cd} holds no dnnlib/ or torch_utils/: give a checkout of NVlabs/stylegan3")
            if str(cd) not in sys.path:
                sys.path.insert(0, str(cd))
        import pickle

        try:
            with p.open("rb") as f:
                data = pickle.load(f)  # noqa: S301 - explicit trust_pickle opt-in above
        except ModuleNotFoundError as e:
            raise InputError(
                f"{p} needs NVlabs' code ({e.name}): set generator.code_dir to a checkout of NVlabs/stylegan3"
            ) from None
        except (pickle.UnpicklingError, EOFError) as e:
            raise InputError(f"not a readable network pickle: {p} ({e})") from None
        G = data[key] if isinstance(data, dict) and key in data else data
        if not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
            raise InputError(f"{p} holds no StyleGAN generator '{key}' (found {type(G).__name__})")
        return cls(G.float(), source=str(p)).to(device)


# ---------------------------------------------------------------------------------------------
# Built-in small style-based generator


@dataclass(frozen=True)
class StyleGeneratorConfig:
    """Size of :class:`SmallStyleGenerator`; ``num_ws = 2 log2(resolution_px) - 2`` as in StyleGAN2
    (8 at 32 px, 14 at 256 px). Channels at resolution r: ``min(channel_base // r, channel_max)``."""

    z_dim: int = 512
    w_dim: int = 512
    resolution_px: int = 64
    mapping_layers: int = 8
    channel_base: int = 2048
    channel_max: int = 128
    mapping_lr_multiplier: float = 0.01  # StyleGAN sec. 4: mapping learns 100x slower
    w_avg_beta: float = 0.995  # running mean of w while training (truncation / inversion start)

    def __post_init__(self) -> None:
        r = self.resolution_px
        if r < 8 or r & (r - 1):
            raise ConfigError(f"generator.resolution_px must be a power of two >= 8, got {r}")

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.resolution_px)) - 2

    def channels(self, res: int) -> int:
        return max(1, min(self.channel_base // res, self.channel_max))


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * math.sqrt(2)  # StyleGAN2 bias_act gain sqrt(2)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (Karras et al. 2018, sec. 4.1): w * lr_mul / sqrt(in)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul))
        self.gain, self.lr_mul, self.act = lr_mul / math.sqrt(in_dim), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)  # (B,in)->(B,out)
        return _lrelu(y) if self.act else y


class ModulatedConv(nn.Module):
    """Modulated conv (StyleGAN2 eq. 1), demodulated (eq. 3): (B,Cin,H,W), w (B,w_dim) -> (B,Cout,H',W')."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, kernel: int = 3, up: bool = False,
                 demodulate: bool = True, activate: bool = True) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)  # style s, init 1 (StyleGAN2 appendix B)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.c_in, self.c_out, self.kernel = c_in, c_out, kernel
        self.up, self.demodulate, self.activate = up, demodulate, activate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        s = self.affine(w)  # (B,w_dim)->(B,Cin)
        wt = self.weight[None] * s[:, None, :, None, None] / math.sqrt(self.c_in * self.kernel**2)  # (B,Cout,Cin,k,k)
        if self.demodulate:
            wt = wt * torch.rsqrt(wt.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)  # eq. 3
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (B,C,H,W)->(B,C,2H,2W)
        H, W = x.shape[2:]
        # grouped convolution: one filter bank per item (StyleGAN2's fused modconv)
        y = F.conv2d(x.reshape(1, B * self.c_in, H, W), wt.reshape(B * self.c_out, self.c_in, self.kernel, self.kernel),
                     padding=self.kernel // 2, groups=B)  # (1,B*Cin,H,W)->(1,B*Cout,H,W)
        y = y.reshape(B, self.c_out, H, W) + self.bias[None, :, None, None]  # (1,B*Cout,H,W)->(B,Cout,H,W)
        return _lrelu(y) if self.activate else y


class MappingNetwork(nn.Module):
    """z (B,z_dim) -> w (B,w_dim): pixel norm then an MLP with lr multiplier (StyleGAN sec. 2)."""

    def __init__(self, cfg: StyleGeneratorConfig) -> None:
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=cfg.mapping_lr_multiplier, act=True)
                                   for a, b in zip(dims[:-1], dims[1:], strict=True)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # normalize_2nd_moment
        return self.net(z)  # (B,z_dim)->(B,w_dim)


class SmallStyleGenerator(nn.Module):
    """Trainable StyleGAN2-like generator (see module docstring); a :class:`StyleGenerator`.

    W+ indices follow StyleGAN2: the 4x4 block uses ws[0] (conv) and ws[1] (to-RGB); each
    later block at resolution r starts at index i = 2 log2(r) - 5 with conv0 (upsampling)
    ws[i], conv1 ws[i+1] and to-RGB ws[i+2].
    """

    def __init__(self, cfg: StyleGeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or StyleGeneratorConfig()
        self.cfg = cfg
        self.num_ws, self.w_dim, self.z_dim, self.resolution = cfg.num_ws, cfg.w_dim, cfg.z_dim, cfg.resolution_px
        self.mapping_net = MappingNetwork(cfg)
        c4 = cfg.channels(4)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(c4, c4, cfg.w_dim)])
        self.torgbs = nn.ModuleList([ModulatedConv(c4, 3, cfg.w_dim, kernel=1, demodulate=False, activate=False)])
        res = 8
        while res <= cfg.resolution_px:
            c_in, c_out = cfg.channels(res // 2), cfg.channels(res)
            self.convs.append(ModulatedConv(c_in, c_out, cfg.w_dim, up=True))
            self.convs.append(ModulatedConv(c_out, c_out, cfg.w_dim))
            self.torgbs.append(ModulatedConv(c_out, 3, cfg.w_dim, kernel=1, demodulate=False, activate=False))
            res *= 2
        self.register_buffer("w_avg_buf", torch.zeros(cfg.w_dim))
        with torch.no_grad():  # start w_avg at the mean of the untrained mapping (own RNG: no global side effect)
            g = torch.Generator().manual_seed(0)
            self.w_avg_buf.copy_(self.mapping_net(torch.randn(1024, cfg.z_dim, generator=g)).mean(0))

    @property
    def w_avg(self) -> torch.Tensor:
        return self.w_avg_buf  # (w_dim,)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (B,z_dim) -> ws (B,num_ws,w_dim); ``c`` is ignored (unconditional). Tracks w_avg in training."""
        w = self.mapping_net(z)  # (B,z_dim)->(B,w_dim)
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                self.w_avg_buf.copy_(w.detach().mean(0).lerp(self.w_avg_buf, self.cfg.w_avg_beta))
        if truncation_psi != 1.0:
            w = self.w_avg_buf.lerp(w, truncation_psi)  # StyleGAN sec. 3.2 truncation trick
        return w[:, None].expand(-1, self.num_ws, -1)  # (B,w_dim)->(B,num_ws,w_dim)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """ws (B,num_ws,w_dim) -> img float (B,3,R,R), nominally [-1,1]."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise InputError(f"ws must be (B,{self.num_ws},{self.w_dim}), got {tuple(ws.shape)}")
        B = ws.shape[0]
        x = self.const[None].expand(B, -1, -1, -1)  # (C,4,4)->(B,C,4,4)
        x = self.convs[0](x, ws[:, 0])
        img = self.torgbs[0](x, ws[:, 1])  # (B,3,4,4)
        for k in range(1, len(self.torgbs)):
            i = 2 * k - 1
            x = self.convs[2 * k - 1](x, ws[:, i])  # (B,C,r/2,r/2)->(B,C',r,r)
            x = self.convs[2 * k](x, ws[:, i + 1])
            up = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)  # (B,3,r/2,r/2)->(B,3,r,r)
            img = up + self.torgbs[k](x, ws[:, i + 2])  # skip architecture (StyleGAN2 fig. 7b)
        return img

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (B,z_dim) -> img (B,3,R,R)."""
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi))

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``generator.json`` (config) and ``generator.safetensors`` into folder ``path``."""
        from safetensors.torch import save_file

        from a2v.config import to_dict
        from a2v.io import atomic_path, write_json_atomic

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(d / GENERATOR_WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": SMALL_GENERATOR_FORMAT})
        write_json_atomic(d / GENERATOR_CONFIG, {"format": SMALL_GENERATOR_FORMAT, "config": to_dict(self.cfg)})
        return d

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> SmallStyleGenerator:
        """Load a folder written by :meth:`save_pretrained`; MissingWeightsError names a missing file."""
        import json

        from safetensors.torch import load_file

        from a2v.config import from_dict

        d = Path(path).expanduser()
        for name in (GENERATOR_CONFIG, GENERATOR_WEIGHTS):
            if not (d / name).is_file():
                raise MissingWeightsError(f"built-in StyleGAN generator file not found: {d / name}")
        info = json.loads((d / GENERATOR_CONFIG).read_text(encoding="utf-8"))
        if info.get("format") != SMALL_GENERATOR_FORMAT:
            raise InputError(f"{d / GENERATOR_CONFIG} is not a built-in generator config ({info.get('format')!r})")
        G = cls(from_dict(StyleGeneratorConfig, info["config"], str(d / GENERATOR_CONFIG)))
        G.load_state_dict(load_file(str(d / GENERATOR_WEIGHTS)))
        return G.to(device)


GENERATOR_CONFIG = "generator.json"
GENERATOR_WEIGHTS = "generator.safetensors"
SMALL_GENERATOR_FORMAT = "a2v.small_style_generator/1"


def load_generator(
    kind: str,
    path: str | Path,
    *,
    code_dir: str | Path | None = None,
    trust_pickle: bool = False,
    builtin: StyleGeneratorConfig | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """A :class:`StyleGenerator` in eval mode: ``kind="nvlabs"`` -> :meth:`NVLabsGenerator.from_pickle` (``path``
    = the ``.pkl``); ``kind="builtin"`` -> :meth:`SmallStyleGenerator.from_pretrained` (``path`` = a folder),
    or random weights from ``builtin`` when ``path`` is empty (tests, tiny runs).

    A missing file raises :class:`a2v.errors.MissingWeightsError` naming it.
    """
    if kind == "nvlabs":
        return NVLabsGenerator.from_pickle(path, code_dir or None, trust_pickle, device=device)
    if kind == "builtin":
        if not str(path):
            return SmallStyleGenerator(builtin).to(device).eval()
        return SmallStyleGenerator.from_pretrained(path, device).eval()
    raise ConfigError(f"generator.kind must be 'nvlabs' or 'builtin', got {kind!r}")
