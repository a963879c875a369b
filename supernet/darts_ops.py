"""The DARTS operations (standard definitions), with the BN policy switch of :mod:`.ops`.

All convolutions are bias-free; every BN follows ``bn`` (``"standalone"`` or ``"search"``).
Pools carry no BN (as in the stand-alone DARTS network), so a supernet edge and the extracted
sub-network's op are the same module.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .ops import BNPolicy, ReLUConvBN, Zero, avg_pool_3x3, make_bn


class SepConv(nn.Module):
    """Two stacked ReLU - depthwise conv - pointwise conv - BN blocks (stride on the first)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 bn: BNPolicy) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            make_bn(c_in, bn),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            make_bn(c_out, bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU - depthwise dilated conv - pointwise conv - BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, bn: BNPolicy) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            make_bn(c_out, bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two 1x1 stride-2 convs (the second shifted by one pixel),
    concatenated along channels, then BN. Odd sizes are padded so both halves agree."""

    def __init__(self, c_in: int, c_out: int, bn: BNPolicy) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, "
                             f"got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = make_bn(c_out, bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # odd: pad so both halves have ceil(n/2)
            shifted = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))[:, :, 1:, 1:]
        else:
            shifted = x[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


OpFactory = Callable[[int, int, BNPolicy], nn.Module]

#: name -> factory(channels, stride, bn). Stride 2 is used on reduction-cell edges from the two
#: cell inputs; skip_connect is then a factorized reduce.
OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, bn: Zero(stride),
    "max_pool_3x3": lambda C, stride, bn: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, bn: avg_pool_3x3(stride),
    "skip_connect": lambda C, stride, bn: (nn.Identity() if stride == 1
                                           else FactorizedReduce(C, C, bn)),
    "sep_conv_3x3": lambda C, stride, bn: SepConv(C, C, 3, stride, 1, bn),
    "sep_conv_5x5": lambda C, stride, bn: SepConv(C, C, 5, stride, 2, bn),
    "dil_conv_3x3": lambda C, stride, bn: DilConv(C, C, 3, stride, 2, 2, bn),
    "dil_conv_5x5": lambda C, stride, bn: DilConv(C, C, 5, stride, 4, 2, bn),
}


def make_op(name: str, channels: int, stride: int, bn: BNPolicy) -> nn.Module:
    """The DARTS op ``name`` at ``channels`` channels and ``stride``."""
    try:
        factory = OPS[name]
    except KeyError:
        raise ValueError(f"unknown DARTS op {name!r}; valid ops: {', '.join(OPS)}") from None
    return factory(channels, stride, bn)


def preprocess(c_in: int, c_out: int, reduce: bool, bn: BNPolicy) -> nn.Module:
    """Cell-input preprocessing: FactorizedReduce after a reduction, else ReLU-Conv1x1-BN."""
    if reduce:
        return FactorizedReduce(c_in, c_out, bn)
    return ReLUConvBN(c_in, c_out, 1, 1, 0, bn)
