"""The labels a strategy pays for: counted, recorded, replayed.

A label is an arch's value from the source the user trusts, configured in the ``labels``
section as a ground-truth source is (``labels: {source: nb201, column: cifar10_valid_val}``
stands for a full training of each labelled arch; ``source: table`` reads a user's CSV or JSON
file; any registered source works). Only a strategy that spends labels (``guided``) asks for
them, through :meth:`LabelBook.label`; every label is appended to ``SEARCH_DIR/labels.jsonl``
the moment it is read (``{"index", "arch", "label"}``), and a resumed search answers the same
requests from that file, so a label is never paid for twice and a changed source cannot change
a replayed search. The count is reported as the search's labels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from search_spaces import Arch, GroundTruth
from speedynas_core.atomic_io import append_jsonl, read_jsonl
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError

__all__ = ["LabelBook"]


class LabelBook:
    """The labels of one search: ``source`` answers new requests, ``path`` keeps them."""

    def __init__(self, source: GroundTruth, path: Path, env: DistEnv = DistEnv()) -> None:
        self.source, self.path, self.env = source, path, env
        self._stored = read_jsonl(path, missing_ok=True)
        self.labels: list[tuple[str, float]] = []  # (arch, label) in the order asked
        self._best: tuple[int, str, float] | None = None

    @property
    def count(self) -> int:
        """Labels asked for so far in this run of the strategy (replayed ones included)."""
        return len(self.labels)

    def label(self, archs: Sequence[Arch | str]) -> list[float]:
        """The label of each arch (NaN when the source does not know it), each counted."""
        out = []
        for arch in map(str, archs):
            index = len(self.labels)
            if index < len(self._stored):
                stored = self._stored[index]
                if stored.get("arch") != arch:
                    raise SpeedyNASError(
                        f"{self.path}: label {index} is of {stored.get('arch')}, but the "
                        f"strategy now asks for {arch}: the labels belong to another search; "
                        "use another name=...")
                value = math.nan if stored.get("label") is None else float(stored["label"])
            else:
                known = self.source.lookup(arch)
                value = math.nan if known is None else float(known)
                if self.env.is_main:
                    append_jsonl(self.path, {"index": index, "arch": arch, "label": value})
            self.labels.append((arch, value))
            if math.isfinite(value) and (self._best is None or value > self._best[2]):
                self._best = (index, arch, value)
            out.append(value)
        return out

    def best(self) -> tuple[int, str, float] | None:
        """(label index, arch, label) of the best finite label so far (ties: the earliest)."""
        return self._best
