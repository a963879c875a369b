"""Measuring networks: parameter counts and FLOPs (of networks and of an arch's networks), and
accuracy on a set of images."""
from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from speedynas_core.runtime import Precision, mixed_precision
from search_spaces import Arch

from .base import Supernet
from .registry import NETWORKS


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (BN affine and biases included; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_flops(module: nn.Module, resolution: int = 32, **forward_kwargs: Any) -> int:
    """FLOPs of one forward pass of a 1x3xRxR image, as counted by ``torch.utils.flop_counter``
    (convolutions and matmuls, 2 FLOPs per multiply-accumulate; BN, ReLU and pooling are free).

    Works on meta-device modules, so no weights need to exist.
    """
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, 3, resolution, resolution, device=device)
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(x, **forward_kwargs)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())


def _meta_network(arch: Arch, num_classes: int, size: dict[str, Any]) -> nn.Module:
    with torch.device("meta"):
        return NETWORKS.create(arch.space_name, arch, num_classes=num_classes, **size)


@functools.lru_cache(maxsize=1 << 16)
def arch_parameters(arch: Arch, num_classes: int = 10, **size: Any) -> int:
    """Parameters of ``arch``'s stand-alone network (built on the meta device, no memory;
    remembered: building it takes tens of milliseconds)."""
    return count_parameters(_meta_network(arch, num_classes, size))


@functools.lru_cache(maxsize=1 << 16)
def arch_flops(arch: Arch, num_classes: int = 10, resolution: int = 32, **size: Any) -> int:
    """FLOPs of ``arch``'s stand-alone network at ``resolution`` (see :func:`count_flops`;
    remembered: counting takes a tenth of a second or more)."""
    return count_flops(_meta_network(arch, num_classes, size), resolution)


def path_parameters(net: Supernet, arch: Any) -> int:
    """Parameters of the sub-network ``arch`` selects in ``net`` (nothing is copied)."""
    return count_parameters(net.assemble_subnet(arch, lambda module: module))


@torch.no_grad()
def path_accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *arch: Any,
                  batch_size: int = 500, precision: Precision = "fp32") -> float:
    """Accuracy of ``net(x, *arch)`` (eval mode, forward in ``precision``) on already
    normalised images."""
    was_training = net.training
    net.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        with mixed_precision(images.device, precision):
            logits = net(images[start:start + batch_size], *arch)
        correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    net.train(was_training)
    return correct / len(labels)
