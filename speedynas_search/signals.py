"""Every cheap signal of a search's evaluated cells, as feature blocks for the predictors.

Blocks (each: signal names and a cells x signals matrix):

- ``zero_cost``: every zero-cost proxy measured on all the given records (their
  ``trajectory.zero_cost``; a proxy some record lacks is left out);
- ``size``: parameter count and FLOPs (``None`` FLOPs read as NaN);
- ``graph``: :meth:`search_spaces.SearchSpace.graph_features`;
- ``encoding``: :meth:`search_spaces.SearchSpace.encode`.

A block the space cannot give (no graph features, no encoding) is left out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from search_spaces import SearchSpace
from speedynas_core.atomic_io import read_jsonl

__all__ = ["BLOCKS", "Signals", "search_signals", "signals_of"]

BLOCKS = ("zero_cost", "size", "graph", "encoding")


class Signals(NamedTuple):
    """The cells (canonical arch strings) and their signals by block."""

    archs: list[str]
    blocks: dict[str, tuple[list[str], np.ndarray]]

    def matrix(self, blocks: Sequence[str]) -> np.ndarray:
        """The named blocks side by side (cells x signals)."""
        return np.column_stack([self.blocks[b][1] for b in blocks])

    def column(self, block: str, name: str) -> np.ndarray:
        """One signal of every cell."""
        names, values = self.blocks[block]
        return values[:, names.index(name)]


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


def signals_of(records: Sequence[Mapping[str, Any]], space: SearchSpace,
               blocks: Sequence[str] = BLOCKS) -> Signals:
    """The ``blocks`` of each record (results lines, or :meth:`Record.to_json` objects)."""
    archs = [str(r["arch"]) for r in records]
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    if "zero_cost" in blocks:
        measured = [r["trajectory"].get("zero_cost") or {} for r in records]
        proxies = sorted(set.intersection(*(set(m) for m in measured))) if measured else []
        out["zero_cost"] = (proxies, np.array([[_number(m[p]) for p in proxies]
                                               for m in measured]).reshape(len(records), -1))
    if "size" in blocks:
        out["size"] = (["params", "flops"], np.array(
            [[_number(r["params"]), _number(r["flops"])] for r in records]).reshape(-1, 2))
    parsed = [space.parse(a) for a in archs] if {"graph", "encoding"} & set(blocks) else []
    if "graph" in blocks and parsed:
        try:
            graph = [space.graph_features(a) for a in parsed]
        except NotImplementedError:
            graph = []
        if graph:
            out["graph"] = (list(graph[0]), np.array([list(g.values()) for g in graph]))
    if "encoding" in blocks and parsed:
        codes = [space.encode(a) for a in parsed]
        if all(c is not None for c in codes):
            out["encoding"] = ([f"encoding{i}" for i in range(len(codes[0]))],
                               np.array(codes, dtype=float))
    return Signals(archs, out)


def search_signals(search_dir: Path, space: SearchSpace,
                   blocks: Sequence[str] = BLOCKS) -> Signals:
    """The signals of each distinct arch of a finished search (its first record)."""
    first: dict[str, dict[str, Any]] = {}
    for record in read_jsonl(search_dir / "results.jsonl"):
        first.setdefault(record["arch"], record)
    return signals_of(list(first.values()), space, blocks)
