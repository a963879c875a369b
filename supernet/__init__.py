"""Weight-sharing supernets, stand-alone networks, and their sizes in parameters and FLOPs."""
from __future__ import annotations

from typing import Any

from torch import nn

from search_spaces import Arch

from .base import Supernet, tensor_snapshot
from .registry import NETWORKS, SUPERNETS, register_network, register_supernet


def create_supernet(space: str, num_classes: int = 10, **size: Any) -> Supernet:
    """The weight-sharing supernet of ``space`` (``nb201`` or ``darts``)."""
    return SUPERNETS.create(space, num_classes=num_classes, **size)


def list_supernets() -> list[str]:
    """Space names that have a supernet."""
    return SUPERNETS.names()


def build_network(arch: Arch, num_classes: int = 10, **size: Any) -> nn.Module:
    """The stand-alone network of ``arch`` (for retraining from scratch)."""
    return NETWORKS.create(arch.space_name, arch, num_classes=num_classes, **size)


# Importing the modules registers the built-in networks.
from . import darts, nb201  # noqa: E402,F401

__all__ = [
    "NETWORKS", "SUPERNETS", "Supernet", "build_network", "create_supernet", "list_supernets",
    "register_network", "register_supernet", "tensor_snapshot",
]
