"""Exponential moving average of a model's weights (Polyak averaging), as used by DDPM/EDM training.

    shadow_0 = theta_0                                   (a copy at construction)
    shadow_t = d_t * shadow_{t-1} + (1 - d_t) * theta_t  (after the t-th optimizer update)
    d_t      = decay                                     or, with warm-up,
    d_t      = min(decay, (1 + t) / (10 + t))            (TF ExponentialMovingAverage num_updates rule)

With a constant decay this has the closed form
``shadow_t = d**t * theta_0 + (1 - d) * sum_{k=1..t} d**(t - k) * theta_k``.
Floating-point parameters and buffers are averaged; integer buffers (BatchNorm's
``num_batches_tracked``) are copied.

Hand-written (about 40 lines) because ``torch.optim.swa_utils.AveragedModel`` blends
integer buffers and has no decay warm-up, and diffusers' EMAModel keeps lists of
tensors that do not save as a plain module state dict.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """An averaged copy of ``model`` (same device and dtype); call it like the model.

    ``update(model)`` after each optimizer update; ``copy_to(model)`` writes the
    averaged weights into ``model``; ``self.module`` is the averaged network.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.num_updates = 0

    def decay_at(self, t: int) -> float:
        """Decay applied at update number ``t`` (1-based)."""
        if self.warmup:
            return min(self.decay, (1.0 + t) / (10.0 + t))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = self.decay_at(self.num_updates)
        ema_float, model_float = [], []
        pairs = list(zip(self.module.parameters(), model.parameters(), strict=True))
        pairs += list(zip(self.module.buffers(), model.buffers(), strict=True))
        for e, m in pairs:
            if e.is_floating_point():
                ema_float.append(e)
                model_float.append(m.detach().to(e.dtype))
            else:
                e.copy_(m)
        if ema_float:
            torch._foreach_lerp_(ema_float, model_float, 1.0 - d)  # e += (1 - d) * (m - e)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (same architecture)."""
        model.load_state_dict(self.module.state_dict())

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
