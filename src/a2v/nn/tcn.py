"""Temporal Convolutional Network: a stack of dilated residual 1-D convolution blocks.

Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic Convolutional and Recurrent
Networks for Sequence Modeling", Fig. 1: each residual block holds ``convs_per_block``
dilated convolutions (kernel ``k``, dilation ``d``) with ReLU and dropout, plus a 1x1
convolution on the residual path when the channel count changes. ``causal=True`` pads on the
left only (output t sees inputs <= t); ``causal=False`` pads both sides ("same"), so output t
sees ``(k-1)*d/2`` frames of past and future per convolution.

Receptive field (in input frames), closed form used by :func:`tcn_receptive_field`::

    R = 1 + convs_per_block * (k - 1) * sum(dilations)

Shapes: channels-first ``(B,C,T)`` like ``torch.nn.Conv1d``; the time length is unchanged.
Written by hand because neither torch nor a maintained package ships a plain TCN layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TCN", "TemporalBlock", "tcn_receptive_field", "tcn_context"]


def tcn_receptive_field(kernel_size: int, dilations: Sequence[int], convs_per_block: int = 2) -> int:
    """Number of input frames that one output frame depends on (Bai et al. 2018, §3.2)."""
    if kernel_size < 1 or convs_per_block < 1 or any(d < 1 for d in dilations):
        raise ValueError("kernel_size, convs_per_block and every dilation must be >= 1")
    return 1 + convs_per_block * (kernel_size - 1) * sum(int(d) for d in dilations)


def _pad_amounts(kernel_size: int, dilation: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length; non-causal puts the odd frame on the right."""
    total = (kernel_size - 1) * dilation
    if causal:
        return total, 0
    return total // 2, total - total // 2


def tcn_context(
    kernel_size: int, dilations: Sequence[int], convs_per_block: int = 2, causal: bool = False
) -> tuple[int, int]:
    """(past, future) frames an output frame sees; ``past + future + 1`` = receptive field."""
    past = future = 0
    for d in dilations:
        left, right = _pad_amounts(kernel_size, int(d), causal)
        past += convs_per_block * left
        future += convs_per_block * right
    return past, future


class TemporalBlock(nn.Module):
    """One residual block: ``relu(x_res + f(x))``, f = [pad -> conv(k, d) -> ReLU -> dropout] x n.

    x: float (B,C_in,T) -> float (B,C_out,T).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int,
        causal: bool = False,
        convs_per_block: int = 2,
        dropout: float = 0.0,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        self.pad = _pad_amounts(kernel_size, dilation, causal)
        layers: list[nn.Module] = []
        for i in range(convs_per_block):
            conv = nn.Conv1d(
                in_channels if i == 0 else out_channels, out_channels, kernel_size, dilation=dilation
            )
            if weight_norm:
                conv = nn.utils.parametrizations.weight_norm(conv)
            layers.append(conv)
        self.convs = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (block output, pre-residual branch for skip connections), both (B,C_out,T)."""
        h = x
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(F.pad(h, self.pad))))  # (B,C,T+pad)->(B,C_out,T)
        return torch.relu(self.residual(x) + h), h


class TCN(nn.Module):
    """Dilated residual TCN: x float (B,C_in,T) -> float (B,C,T), any T >= 1, any rate.

    Args:
        in_channels: input channels C_in.
        channels: filters per convolution C (the paper's lip-sync TCN uses 256).
        kernel_size: temporal kernel size k.
        dilations: one residual block per dilation, e.g. (1, 2, 4, 8).
        causal: left padding only (streaming-friendly) instead of centred "same" padding.
        convs_per_block: dilated convolutions per residual block (2 in Bai et al. 2018).
        dropout: dropout after every convolution (0 disables).
        weight_norm: wrap every dilated convolution in weight normalisation.
        skip_connections: return relu(sum of every block's branch output) (WaveNet / keras-tcn
            ``use_skip_connections``) instead of the last block's output.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8),
        causal: bool = False,
        convs_per_block: int = 2,
        dropout: float = 0.0,
        weight_norm: bool = False,
        skip_connections: bool = False,
    ) -> None:
        super().__init__()
        if not dilations:
            raise ValueError("TCN needs at least one dilation")
        self.kernel_size = int(kernel_size)
        self.dilations = tuple(int(d) for d in dilations)
        self.causal = bool(causal)
        self.convs_per_block = int(convs_per_block)
        self.skip_connections = bool(skip_connections)
        self.blocks = nn.ModuleList(
            TemporalBlock(
                in_channels if i == 0 else channels,
                channels,
                kernel_size,
                d,
                causal=causal,
                convs_per_block=convs_per_block,
                dropout=dropout,
                weight_norm=weight_norm,
            )
            for i, d in enumerate(self.dilations)
        )

    @property
    def receptive_field(self) -> int:
        """Input frames one output frame depends on."""
        return tcn_receptive_field(self.kernel_size, self.dilations, self.convs_per_block)

    @property
    def context(self) -> tuple[int, int]:
        """(past, future) input frames one output frame depends on."""
        return tcn_context(self.kernel_size, self.dilations, self.convs_per_block, self.causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float (B,C_in,T) -> float (B,C,T)."""
        skip = None
        for block in self.blocks:
            x, branch = block(x)  # (B,C_in,T)->(B,C,T)
            if self.skip_connections:
                skip = branch if skip is None else skip + branch
        if self.skip_connections:
            return torch.relu(skip)
        return x
