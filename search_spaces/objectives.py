"""Objectives of multi-objective search: any column of a space's shipped tables, or a cost the
search measures itself.

A table objective is a column of a registered ground-truth source that the space ships
(NB201: ``nb201``, ``nb201_hw``, ``nb201_robustness``), named as the column
(``pixel3_latency_cifar10``, ``pgd@Linf_eps-1.0``, ``cifar100_test``) and looked up for free
(no evaluation). Its direction comes from what it measures: latency, energy and the parameter
count are minimised (:data:`MINIMISED`); accuracies, clean or under attack, and Eyeriss's
arithmetic intensity (ops per byte: more reuse) are maximised. :data:`MEASURED` costs
(``params``, ``flops``) are counted by the search for every candidate and minimised.

>>> from search_spaces import create
>>> latency = table_objective(create("nb201"), "pixel3_latency_cifar10")
>>> latency.maximise, latency.lookup("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
...                                  "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
(False, 3.60585)
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from speedynas_core.errors import SpeedyNASError, shown

from .base import Arch, GroundTruth, SearchSpace
from .ground_truth import create_ground_truth
from .nb201_extra_tables import HW_COLUMNS, ROBUSTNESS_COLUMNS
from .nb201_table import COLUMNS

__all__ = ["MEASURED", "MINIMISED", "TABLES", "TableObjective", "objective_names",
           "table_objective"]

#: Costs the search measures for every candidate (``Record`` fields), minimised.
MEASURED: tuple[str, ...] = ("params", "flops")
#: Space -> registered ground-truth source -> its columns that are objectives.
TABLES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "nb201": {"nb201": COLUMNS, "nb201_hw": HW_COLUMNS, "nb201_robustness": ROBUSTNESS_COLUMNS},
}
#: Table columns that are minimised; every other column is maximised.
MINIMISED = frozenset({"params_cifar10"} | {
    column for column in HW_COLUMNS if "_latency_" in column or "_energy_" in column})


@dataclass(frozen=True)
class TableObjective:
    """A column of a shipped table as an objective: ``truth`` serves it, ``maximise`` says
    which way is better."""

    name: str
    maximise: bool
    truth: GroundTruth

    def lookup(self, arch: Arch | str) -> float | None:
        """The column's value of ``arch`` (``None``: the table does not know it)."""
        return self.truth.lookup(arch)

    def lookup_many(self, archs: Iterable[Arch | str]) -> list[float | None]:
        """:meth:`lookup` of each arch, in order."""
        return self.truth.lookup_many(archs)

    def describe(self) -> str:
        """One line: the column, its direction and its source."""
        return (f"{self.name} ({'maximised' if self.maximise else 'minimised'}; "
                f"{self.truth.describe()})")


def objective_names(space: SearchSpace) -> list[str]:
    """Every objective of ``space``: the measured costs, then its tables' columns."""
    return [*MEASURED, *(column for columns in TABLES.get(space.name, {}).values()
                         for column in columns)]


def table_objective(space: SearchSpace, name: str) -> TableObjective:
    """The table objective ``name`` of ``space``; anything else is a one-line error listing
    the valid names."""
    for source, columns in TABLES.get(space.name, {}).items():
        if name in columns:
            return TableObjective(name, name not in MINIMISED,
                                  create_ground_truth(source, space=space, column=name))
    if name in MEASURED:
        raise SpeedyNASError(f"objective {shown(name)} is measured by the search, not read "
                             "from a table")
    raise SpeedyNASError(f"unknown objective {shown(name)} for the {space.name} space; valid "
                         f"objectives: {', '.join(objective_names(space))}")
