"""The ``table`` estimator: a column of the NAS-Bench-201 table shipped with the package.

It is not an estimate: it reads the benchmark's answer (say the 12-epoch accuracy, or the
validation accuracy after 200 epochs) so that strategies can be benchmarked in seconds, the way
tabular NAS benchmarks are used. Its ``lookup`` flag marks it in every output (summary tables,
incumbent records, plots) as a table lookup; it needs no fine-tune and no supernet weights.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Annotated, Any

import search_spaces
from speedynas_core.plugins import Option
from estimators.registry import Estimator, register_estimator
from estimators.trajectory import Candidate, Trajectory

from search_spaces.nb201_table import Column, NB201Truth

#: Appended to the table estimator's name wherever it is reported.
LOOKUP_MARK = "[table lookup, not an estimate]"


@register_estimator("table")
class TableLookup(Estimator):
    """A column of the shipped NAS-Bench-201 table read as a score (NB201 only)."""

    lookup = True

    def __init__(self, column: Annotated[Column, Option(
            help="column of the shipped NAS-Bench-201 table, e.g. cifar10_valid_val or "
                 "cifar10_test_12ep_1seed")] = "cifar10_valid_val") -> None:
        self.column = column

    @property
    def options(self) -> dict[str, Any]:
        return {"column": self.column}

    def describe(self) -> str:
        return f"{super().describe()} {LOOKUP_MARK}"

    @cached_property
    def _table(self) -> NB201Truth:
        return NB201Truth(search_spaces.create("nb201"), column=self.column)

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        value = self._table.lookup(candidate.arch)
        return math.nan if value is None else value
