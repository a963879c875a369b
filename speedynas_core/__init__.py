"""The ground floor every other package stands on: errors, the registry, typed config, atomic
files and checkpoints, runtime state (device, seeds, RNG), torch.distributed and CLI plumbing.

Nothing here knows about search spaces, supernets, data or estimators.
"""
from __future__ import annotations

from .errors import SpeedyNASError
from .registry import Registry

__all__ = ["Registry", "SpeedyNASError"]
