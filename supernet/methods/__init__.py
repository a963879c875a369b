"""Gradient-based search methods: DARTS, DARTS-TSE, DrNAS and DrNAS-TSE, chosen with
``method.name`` (their options under ``method.``), each in a registry of their own
(:data:`METHODS`, :func:`register_method`); :mod:`.trainer` trains a supernet by one."""
from __future__ import annotations

from .base import (
    METHODS,
    ArchParameters,
    GradientMethod,
    TSEObjective,
    create_method,
    register_method,
)

# Importing the modules registers the built-in methods.
from . import darts, drnas  # noqa: E402,F401


def list_methods() -> list[str]:
    """Registered method names."""
    return METHODS.names()


__all__ = ["METHODS", "ArchParameters", "GradientMethod", "TSEObjective", "create_method",
           "list_methods", "register_method"]
