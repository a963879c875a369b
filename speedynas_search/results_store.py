"""A search's ``results.jsonl``: one :class:`Record` per evaluation, appended the moment it
finishes.

Under torchrun, rank r appends its evaluations to ``results.rank{r}.jsonl``; after each batch
rank 0 folds those files into ``results.jsonl`` (in evaluation order) and deletes them, and
every rank reads the merged file. ``results.jsonl`` stays in evaluation order: a record that
fills a gap (a sharded search killed mid-batch, resumed by one process) is inserted in place.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import append_jsonl, atomic_write_text, dumps_strict, read_jsonl
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError

#: Estimator -> str(B) -> score (``None``: a non-finite score, as JSON stores it).
Scores = dict[str, dict[str, float | None]]


@dataclass(kw_only=True)
class Record:
    """One evaluation: ``arch`` fine-tuned for ``steps`` steps (0: none) and scored, the
    ``index``-th of its search. Fields are in the order of the JSON line; ``trajectory`` is
    :meth:`estimators.trajectory.Trajectory.to_dict`'s form, ``seconds`` the evaluation's wall
    time shared by ``processes`` processes."""

    index: int
    arch: str
    steps: int
    params: int
    flops: int | None
    seconds: float
    processes: int = 1
    train_seconds: float = 0.0
    validation_seconds: float = 0.0
    zero_cost_seconds: dict[str, float] = field(default_factory=dict)
    scores: Scores
    trajectory: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON line's object (shares the nested mappings)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """The record of a JSON line that :func:`record_problem` accepts (other keys are
        ignored; the timing keys a record of an earlier version lacks take their defaults)."""
        return cls(**{name: data[name] for name in _FIELDS if name in data})

    def score(self, estimator: str, budget: int) -> float:
        """One score (``None``, JSON's null, reads as NaN)."""
        per_budget = self.scores.get(estimator) or {}
        if str(budget) not in per_budget:
            raise SpeedyNASError(f"results record for {self.arch} has no {estimator!r} "
                                 f"score at B={budget}")
        value = per_budget[str(budget)]
        return math.nan if value is None else float(value)


_FIELDS = tuple(f.name for f in fields(Record))
_REQUIRED = tuple(f.name for f in fields(Record)
                  if f.default is MISSING and f.default_factory is MISSING)


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
        if own != self.path or record.index > self._last_index:
            append_jsonl(own, record.to_json())
            if own == self.path:
                self._last_index = record.index
            return
        records = self.load()
        records[record.index] = record
        self.write([records[i] for i in sorted(records)])

    def load(self) -> dict[int, Record]:
        """Every recorded evaluation by index, merged or not, each checked."""
        records: dict[int, Record] = {}
        for path in [self.path, *self.partial_files()]:
            for number, data in enumerate(read_jsonl(path, missing_ok=True), 1):
                problem = record_problem(data, records)
                if problem:
                    raise SpeedyNASError(f"{path}, record {number}: {problem}; move the file "
                                         "away to start the search over")
                records[data["index"]] = Record.from_json(data)
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
        atomic_write_text(self.path, "".join(dumps_strict(r.to_json()) + "\n" for r in records))
        self._last_index = max((r.index for r in records), default=-1)


def record_problem(data: Any, seen: Mapping[int, Record]) -> str | None:
    """Why the JSON value ``data`` is not a results record (``None`` when it is); ``seen``: the
    records before it (an index twice is refused)."""
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict) \
            or not isinstance(data.get("arch"), str):
        return "not a results record (a JSON object with index, arch, steps and scores)"
    index = data.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return f"index {index!r} is not an evaluation index (an integer >= 0)"
    steps = data.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return f"steps {steps!r} is not a number of fine-tune steps (an integer >= 0)"
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        return f"evaluation {index} lacks {', '.join(missing)}"
    if index in seen:
        return f"evaluation {index} appears twice"
    return None


def record_score(data: Mapping[str, Any], estimator: str, budget: int | str) -> float:
    """One score of a ``results.jsonl`` line read as JSON (for scripts that read the file
    themselves; see :meth:`Record.score`)."""
    return Record.from_json(data).score(estimator, int(budget))
