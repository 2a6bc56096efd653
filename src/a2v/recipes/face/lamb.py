"""LAMB optimiser (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2).

Hand-written: torch has no LAMB and torch-optimizer, the usual package, is unmaintained; the
update is a few lines of Adam plus a per-tensor trust ratio.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class Lamb(torch.optim.Optimizer):
    """Layer-wise adaptive Adam: per parameter tensor ``x``, with Adam moments and bias correction,

    ``r = m_hat / (sqrt(v_hat) + eps)``, ``u = r + weight_decay * x``,
    ``x <- x - lr * (||x|| / ||u||) * u`` (trust ratio 1 when either norm is 0; Alg. 2, phi = identity).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"bad LAMB settings: lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch Optimizer signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.float()
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["m"] = torch.zeros_like(g)
                    st["v"] = torch.zeros_like(g)
                st["step"] += 1
                m, v, t = st["m"], st["v"], st["step"]
                m.mul_(b1).add_(g, alpha=1 - b1)  # Alg. 2 line 6
                v.mul_(b2).addcmul_(g, g, value=1 - b2)  # line 7
                r = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + group["eps"])  # lines 8-9
                u = r + group["weight_decay"] * p.float()
                w_norm, u_norm = p.float().norm(), u.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_((-group["lr"] * trust * u).to(p.dtype))  # line 10
        return loss
