"""Training-speed, validation-based, zero-cost and combined estimators: one registry, one
interface. A leaf: nothing here trains, reports or reads files.

>>> from estimators import Candidate, Trajectory, create_estimator
>>> t = Trajectory(train_losses=[2.0, 1.5, 1.0, 0.5])
>>> create_estimator("tse").score(t, Candidate("arch", params=1, flops=1), budget=3)
-4.5
"""
from __future__ import annotations

from .registry import (
                       ESTIMATORS,
                       Batch,
                       Estimator,
                       create_estimator,
                       list_estimators,
                       needed_records,
                       register_estimator,
                       zero_cost_measurers,
)
from .trajectory import FINE_TUNE_RECORDS, RECORDS, Candidate, Trajectory

# Importing the modules registers the built-in, zero-cost, combination and table estimators.
from . import builtin, combo, curves, table, zero_cost  # noqa: E402,F401  isort: skip

__all__ = [
    "Batch", "Candidate", "ESTIMATORS", "Estimator", "FINE_TUNE_RECORDS", "RECORDS", "Trajectory",
    "create_estimator", "list_estimators", "needed_records", "register_estimator",
    "zero_cost_measurers",
]
