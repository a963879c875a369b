"""Architecture values and their search spaces (NAS-Bench-201, DARTS).

>>> import search_spaces
>>> space = search_spaces.create("nb201")
>>> arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
"""
from __future__ import annotations

from speedynas_core.registry import Registry

from .base import Arch, ArchParseError, SearchSpace

SPACES: Registry[SearchSpace] = Registry("search space")
register_space = SPACES.register


def create(name: str) -> SearchSpace:
    """The search space registered as ``name`` (``nb201`` or ``darts``)."""
    return SPACES.create(name)


def list_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return SPACES.names()


def space_of(arch: Arch) -> SearchSpace:
    """The search space an architecture value belongs to."""
    return create(arch.space_name)


# Importing the modules registers the built-in spaces and ground-truth sources.
from . import darts, nb201, nb201_curves, nb201_extra_tables, nb201_table  # noqa: E402,F401
from .ground_truth import (  # noqa: E402
    GROUND_TRUTHS,
    GroundTruth,
    create_ground_truth,
    list_ground_truths,
    lookup_key,
    register_ground_truth,
)
from .objectives import TableObjective, objective_names, table_objective  # noqa: E402

__all__ = [
    "GROUND_TRUTHS", "Arch", "ArchParseError", "GroundTruth", "SearchSpace", "TableObjective",
    "create", "create_ground_truth", "list_ground_truths", "list_spaces", "lookup_key",
    "objective_names", "register_ground_truth", "register_space", "space_of", "table_objective",
]
