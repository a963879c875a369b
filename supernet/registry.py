"""Registries of weight-sharing supernets and stand-alone network builders, keyed by space name."""
from __future__ import annotations

from typing import Callable

from torch import nn

from speedynas_core.registry import Registry

from .base import Supernet

SUPERNETS: Registry[Supernet] = Registry("supernet", fixed=("num_classes",))
NETWORKS: Registry[nn.Module] = Registry(
    "stand-alone network", fixed=("arch", "num_classes", "parts", "bn", "auxiliary"))

register_supernet: Callable = SUPERNETS.register
register_network: Callable = NETWORKS.register
