"""Operations shared by the NB201 and DARTS networks, and the batch-norm policy switch.

BN policy (see README): stand-alone networks use ``"standalone"`` BN (affine, running statistics);
search cells of a supernet, and the sub-networks extracted from it, use ``"search"`` BN (no affine
parameters, no running statistics: batch statistics in train and eval mode alike), so an
inherited sub-network needs no BN recalibration.
"""
from __future__ import annotations

from typing import Literal

import torch
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


def avg_pool_3x3(stride: int = 1) -> nn.AvgPool2d:
    """3x3 average pool, padding 1, padding not counted in the average."""
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
