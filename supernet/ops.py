"""Operations shared by the NB201 and DARTS networks, and the batch-norm policy switch.

BN policy (see README): stand-alone networks use ``"standalone"`` BN (affine, running statistics);
search cells of a supernet, and the sub-networks extracted from it, use ``"search"`` BN (no affine
parameters, no running statistics: batch statistics in train and eval mode alike), so an
inherited sub-network needs no BN recalibration.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

BNPolicy = Literal["standalone", "search"]


def make_bn(channels: int, policy: BNPolicy) -> nn.BatchNorm2d:
    """BatchNorm2d following ``policy``."""
    if policy == "standalone":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if policy == "search":
        return nn.BatchNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"unknown BN policy {policy!r}; valid: standalone, search")


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (bias-free) -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 bn: BNPolicy, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation,
                      bias=False),
            make_bn(c_out, bn),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros with the output shape (spatially strided when ``stride`` > 1)."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return torch.zeros_like(x)
        return torch.zeros_like(x[:, :, :: self.stride, :: self.stride])


class BoxAverage3x3(nn.Module):
    """Stride-1 3x3 average pool, padding 1, padding not counted: what
    ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` computes (up to float rounding), as
    two separable 3-tap sums times 1/count, about 3x faster forward and backward on a CPU than
    the pooling kernel. No parameters or buffers (the 1/count map is cached per size)."""

    def __init__(self) -> None:
        super().__init__()
        self._inverse_counts: dict[tuple, torch.Tensor] = {}

    def inverse_counts(self, x: torch.Tensor) -> torch.Tensor:
        """1 / (the number of in-image pixels of each 3x3 window), shaped (H, W)."""
        h, w = x.shape[-2:]
        key = (h, w, x.device, x.dtype)
        if key not in self._inverse_counts:
            rows = torch.full((h,), 3.0, device=x.device, dtype=x.dtype)
            cols = torch.full((w,), 3.0, device=x.device, dtype=x.dtype)
            for edges in (rows, cols):  # one fewer neighbour at each border (both at size 1)
                edges[0] -= 1
                edges[-1] -= 1
            self._inverse_counts[key] = 1.0 / torch.outer(rows, cols)
        return self._inverse_counts[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1))
        rows = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
        return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) * self.inverse_counts(x)


def avg_pool_3x3(stride: int = 1) -> nn.Module:
    """3x3 average pool, padding 1, padding not counted in the average."""
    if stride == 1:
        return BoxAverage3x3()
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
