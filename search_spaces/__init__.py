"""Architecture values and their search spaces (NAS-Bench-201, DARTS).

>>> import search_spaces
>>> space = search_spaces.create("nb201")
>>> arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
"""
from __future__ import annotations

from core.registry import Registry

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


# Importing the modules registers the built-in spaces.
from . import darts, nb201  # noqa: E402,F401

__all__ = [
    "Arch", "ArchParseError", "SearchSpace", "create", "list_spaces", "register_space", "space_of",
]
