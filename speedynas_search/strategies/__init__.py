"""Search strategies: which archs a search evaluates, at which fidelity, within its limits.

>>> from speedynas_search.strategies import STRATEGIES, register_strategy
"""
from __future__ import annotations

from .registry import (
    STRATEGIES,
    Evaluations,
    Fidelity,
    LimitReached,
    Strategy,
    create_strategy,
    register_strategy,
)

# Importing the modules registers the built-in strategies.
from . import evolution, guided, halving, lce, local, sample  # noqa: E402,F401  isort: skip

__all__ = ["STRATEGIES", "Evaluations", "Fidelity", "LimitReached", "Strategy",
           "create_strategy", "register_strategy"]
