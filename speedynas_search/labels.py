"""The labels a strategy pays for: counted, recorded, replayed.

A label is an arch's value from the source the user trusts, configured in the ``labels``
section as a ground-truth source is (``labels: {source: nb201, column: cifar10_valid_val}``
stands for a full training of each labelled arch; ``source: table`` reads a user's CSV or JSON
file; any registered source works). Only a strategy that spends labels (``guided``) asks for
them, through :meth:`LabelBook.label`; every label is appended to ``SEARCH_DIR/labels.jsonl``
the moment it is read (``{"index", "arch", "label"}``), and a resumed search answers the same
requests from that file, so a label is never paid for twice and a changed source cannot change
a replayed search. The count is reported as the search's labels.

A *paid objective* comes with the label (:meth:`LabelBook.label_with`): the training that gives
the accuracy also gives, say, the accuracy under attack, so one label is one count and both
values. Its value is read from its table column (:mod:`search_spaces.objectives`) only when the
arch is labelled, stored in the same line (``"paid": {column: value}``) and replayed with it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search_spaces import Arch, GroundTruth, TableObjective
from speedynas_core.atomic_io import append_jsonl, read_jsonl
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError

__all__ = ["LabelBook", "stored_labels"]


def _value(stored: Any) -> float:
    """A stored value (``None``: unknown) as a float, NaN when unknown."""
    return math.nan if stored is None else float(stored)


class LabelBook:
    """The labels of one search: ``source`` answers new requests, ``path`` keeps them."""

    def __init__(self, source: GroundTruth, path: Path, env: DistEnv = DistEnv()) -> None:
        self.source, self.path, self.env = source, path, env
        self._stored = read_jsonl(path, missing_ok=True)
        self.labels: list[tuple[str, float]] = []  # (arch, label) in the order asked
        self.paid: dict[str, dict[str, float]] = {}  # objective -> arch -> value paid with it
        self._best: tuple[int, str, float] | None = None

    @property
    def count(self) -> int:
        """Labels asked for so far in this run of the strategy (replayed ones included)."""
        return len(self.labels)

    def label(self, archs: Sequence[Arch | str]) -> list[float]:
        """The label of each arch (NaN when the source does not know it), each counted."""
        return self.label_with(archs, ())[0]

    def label_with(self, archs: Sequence[Arch | str], objectives: Sequence[TableObjective]
                   ) -> tuple[list[float], list[list[float]]]:
        """The label of each arch and, paid with it, the value of each of ``objectives`` (NaN
        when unknown): (labels, one list of values per objective), each arch counted once."""
        names = [objective.name for objective in objectives]
        out: list[float] = []
        paid: list[list[float]] = [[] for _ in objectives]
        for arch in map(str, archs):
            index = len(self.labels)
            if index < len(self._stored):
                value, values = self._replayed(index, arch, names)
            else:
                known = self.source.lookup(arch)
                value = math.nan if known is None else float(known)
                values = [_value(objective.lookup(arch)) for objective in objectives]
                if self.env.is_main:
                    line: dict[str, Any] = {"index": index, "arch": arch, "label": value}
                    if objectives:
                        line["paid"] = dict(zip(names, values))
                    append_jsonl(self.path, line)
            self.labels.append((arch, value))
            for name, column, v in zip(names, paid, values):
                self.paid.setdefault(name, {})[arch] = v
                column.append(v)
            if math.isfinite(value) and (self._best is None or value > self._best[2]):
                self._best = (index, arch, value)
            out.append(value)
        return out, paid

    def _replayed(self, index: int, arch: str, names: Sequence[str]) -> tuple[float,
                                                                              list[float]]:
        """Label ``index`` as stored (the label, then the values of the objectives ``names``
        paid with it); a line of another arch or other paid objectives is refused."""
        stored = self._stored[index]
        if stored.get("arch") != arch:
            raise SpeedyNASError(
                f"{self.path}: label {index} is of {stored.get('arch')}, but the strategy now "
                f"asks for {arch}: the labels belong to another search; use another name=...")
        paid = stored.get("paid", {})
        if sorted(paid) != sorted(names):
            raise SpeedyNASError(
                f"{self.path}: label {index} was paid with {sorted(paid) or 'no objective'}, "
                f"but the strategy now pays for {sorted(names) or 'none'}: the labels belong "
                "to another search; use another name=...")
        return _value(stored.get("label")), [_value(paid[name]) for name in names]

    def best(self) -> tuple[int, str, float] | None:
        """(label index, arch, label) of the best finite label so far (ties: the earliest)."""
        return self._best


def stored_labels(path: Path) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """What a search's ``labels.jsonl`` holds: arch -> label, and objective -> arch -> value
    paid with the label (NaN when unknown)."""
    labels: dict[str, float] = {}
    paid: dict[str, dict[str, float]] = {}
    for line in read_jsonl(path):
        labels[line["arch"]] = _value(line.get("label"))
        for name, value in line.get("paid", {}).items():
            paid.setdefault(name, {})[line["arch"]] = _value(value)
    return labels, paid
