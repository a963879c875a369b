"""A search's ``results.jsonl``: one record per evaluation, appended the moment it finishes.

Under torchrun, rank r appends its evaluations to ``results.rank{r}.jsonl``; after each batch
rank 0 folds those files into ``results.jsonl`` (in evaluation order) and deletes them, and
every rank reads the merged file. ``results.jsonl`` stays in evaluation order: a record that
fills a gap (a sharded search killed mid-batch, resumed by one process) is inserted in place. A record is a JSON object with at least ``index`` (its place
in the evaluation order), ``arch``, ``steps`` (fine-tune steps) and ``scores``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import append_jsonl, atomic_write_text, dumps_strict, read_jsonl
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError

Record = dict[str, Any]


class ResultsStore:
    """The results files of the search in ``out_dir``, as seen by one process."""

    def __init__(self, out_dir: Path, env: DistEnv = DistEnv()) -> None:
        self.out_dir, self.env = out_dir, env
        self.path = out_dir / "results.jsonl"
        self._last_index = -1  # the largest index in results.jsonl, as last read or written

    def partial_files(self) -> list[Path]:
        """Per-rank results of a sharded search not yet merged."""
        return sorted(self.out_dir.glob("results.rank*.jsonl"))

    def started(self) -> bool:
        """Whether any evaluation has been recorded."""
        return self.path.exists() or bool(self.partial_files())

    def own_file(self) -> Path:
        """Where this process appends its evaluations."""
        return self.path if not self.env.distributed \
            else self.out_dir / f"results.rank{self.env.rank}.jsonl"

    def append(self, record: Record) -> None:
        """Record one evaluation: appended to this process's file, or, when it belongs before
        the end of ``results.jsonl``, inserted in index order (the file is rewritten)."""
        own = self.own_file()
        if own != self.path or record["index"] > self._last_index:
            append_jsonl(own, record)
            if own == self.path:
                self._last_index = record["index"]
            return
        records = self.load()
        records[record["index"]] = record
        self.write([records[i] for i in sorted(records)])

    def load(self) -> dict[int, Record]:
        """Every recorded evaluation by index, merged or not, each checked."""
        records: dict[int, Record] = {}
        for path in [self.path, *self.partial_files()]:
            for number, record in enumerate(read_jsonl(path, missing_ok=True), 1):
                problem = record_problem(record, records)
                if problem:
                    raise SpeedyNASError(f"{path}, record {number}: {problem}; move the file "
                                         "away to start the search over")
                records[record["index"]] = record
            if path == self.path:
                self._last_index = max(records, default=-1)
        return records

    def merge(self) -> None:
        """Rank 0: fold the per-rank files into ``results.jsonl``, in index order."""
        partial = self.partial_files()
        if not partial:
            return
        records = self.load()
        self.write([records[i] for i in sorted(records)])
        for path in partial:
            path.unlink()

    def sync(self) -> dict[int, Record]:
        """After a batch: merge (rank 0) and return every record (all ranks)."""
        self.env.barrier()
        if self.env.is_main:
            self.merge()
        self.env.barrier()
        return self.load()

    def write(self, records: list[Record]) -> None:
        """Replace ``results.jsonl`` with ``records`` (atomically)."""
        atomic_write_text(self.path, "".join(dumps_strict(r) + "\n" for r in records))
        self._last_index = max((r["index"] for r in records), default=-1)


def record_problem(record: Any, seen: dict[int, Record]) -> str | None:
    """Why ``record`` is not a results record (``None`` when it is); ``seen``: the records
    before it (an index twice is refused)."""
    if not isinstance(record, dict) or not isinstance(record.get("scores"), dict) \
            or not isinstance(record.get("arch"), str):
        return "not a results record (a JSON object with index, arch, steps and scores)"
    index = record.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return f"index {index!r} is not an evaluation index (an integer >= 0)"
    steps = record.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return f"steps {steps!r} is not a number of fine-tune steps (an integer >= 0)"
    if index in seen:
        return f"evaluation {index} appears twice"
    return None


def record_score(record: Mapping[str, Any], estimator: str, budget: int) -> float:
    """One score of a results record (``None``, e.g. JSON null, reads as NaN)."""
    per_budget = (record.get("scores") or {}).get(estimator) or {}
    key = str(budget) if str(budget) in per_budget else budget
    if key not in per_budget:
        raise SpeedyNASError(f"results record for {record.get('arch')} has no {estimator!r} "
                             f"score at B={budget}")
    value = per_budget[key]
    return math.nan if value is None else float(value)
