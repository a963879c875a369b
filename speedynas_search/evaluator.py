"""The evaluations a strategy asks for: limits, resume by replay, sharding, fitness, incumbent.

The incumbent after every evaluation is the best so far by the fitness (see below) of the
highest fidelity reached; a batch's evaluations run together, so a joint fitness ranks them
with the whole batch.

A strategy is replayed from its start on every run of a search: an evaluation already recorded
under the index it gets now (the same arch at the same fine-tune steps, or the search has
changed) is answered from ``results.jsonl``; the others are computed (sharded over the torchrun
ranks: the i-th new evaluation of a batch on rank i mod world_size), recorded the moment they
finish, and the batch is merged before the strategy sees it. Every rank replays the same
strategy on the same records, so they all propose the same batches.

The limits (``limit.evaluations``, ``limit.steps``, ``limit.seconds``) are checked before each
batch: a batch is cut to what the evaluation and step limits still allow, and once a limit is
reached :class:`~speedynas_search.strategies.LimitReached` ends the strategy. Seconds are those
recorded with each evaluation (divided by the processes that shared its run), so a replay
spends them again exactly; a seconds limit depends on the machine, the others do not.

Fitness: a per-candidate estimator's stored score at the fidelity's B; a joint estimator (a rank
combination) is re-ranked over every evaluation made so far at the same fidelity each
time the strategy asks, so the ranks it compares are always those of everything it has seen
at that fidelity.

Cost: a per-candidate fitness is read once per evaluation (kept, and extended as evaluations
come in), and the incumbent is kept as a running best, so the bookkeeping of a search of n
evaluations is O(n) in all, not O(n) per evaluation (a 100,000-query table-mode search stays
linear). A joint fitness is re-ranked over all of its fidelity's evaluations once per batch it
is asked for (its definition); the incumbents of that batch then take one pass over them.
"""
from __future__ import annotations

import bisect
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tqdm import tqdm

from speedynas_core.atomic_io import dumps_strict
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError
from search_spaces import Arch, SearchSpace, TableObjective, table_objective

from .labels import LabelBook
from .results_store import Record, ResultsStore
from .search_config import LimitConfig
from .strategies import Fidelity, LimitReached

#: Computes one evaluation: (index, arch, fidelity) -> its results record.
Compute = Callable[[int, Arch, Fidelity], Record]
#: Scores of a joint estimator over records at budget B: (name, records, B) -> scores.
JointScores = Callable[[str, Sequence[Record], int], list[float]]


@dataclass
class Spent:
    """What the evaluations so far cost, and the labels they used: those a strategy asked for
    (:meth:`Evaluator.label`) and the evaluations whose fitness is a table lookup."""

    evaluations: int = 0
    steps: int = 0
    seconds: float = 0.0
    labels: int = 0

    def add(self, record: Record, labelled: bool = False) -> None:
        """Count ``record``; ``labelled``: its fitness was a table lookup (a label)."""
        self.evaluations += 1
        self.steps += int(record.steps)
        self.seconds += float(record.seconds) / int(record.processes)
        self.labels += labelled


class FitnessView(Mapping[int, float]):
    """A read-only snapshot of a fitness that only grows: the first ``size`` entries of
    ``scores``, whose keys (record indices) are added in increasing order and listed in
    ``order``. Taking one copies nothing, so a strategy that asks for the fitness after every
    batch costs O(batch), not O(evaluations so far)."""

    __slots__ = ("_scores", "_order", "_size", "_end")

    def __init__(self, scores: dict[int, float], order: list[int]) -> None:
        self._scores, self._order, self._size = scores, order, len(order)
        self._end = order[-1] + 1 if order else 0  # keys from here on came after the snapshot

    def __getitem__(self, index: int) -> float:
        value = self._scores[index]
        if index >= self._end:
            raise KeyError(index)
        return value

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self._order, self._size)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"FitnessView({dict(self)!r})"


@dataclass
class _Running:
    """The running incumbent at one fidelity: the best of the first ``scanned`` evaluations
    at its steps (``best``: a record index, ``None`` before any) by ``scores``."""

    scores: Mapping[int, float]
    scanned: int = 0
    best: int | None = None


def progress_total(planned: int | None, limit: LimitConfig,
                   fidelities: Sequence[Fidelity]) -> tuple[int | None, str]:
    """The progress bar's total and description: the fewest evaluations that the strategy
    (``planned``: ``None`` when it cannot say) and the limits that count evaluations allow, and
    whether a limit that does not count them (seconds, or steps spent at several fidelities)
    may end the search sooner."""
    steps = {f.steps for f in fidelities}
    counts = [n for n in (planned, limit.evaluations) if n is not None]
    sooner = ["limit.seconds"] if limit.seconds is not None else []
    if limit.steps is not None and steps != {0}:  # evaluations without fine-tune cost no steps
        if len(steps) == 1:
            counts.append(limit.steps // steps.pop())
        else:
            sooner.append("limit.steps")
    if not counts:
        return None, "evaluations (total unknown" + (f": until {' or '.join(sooner)})" if sooner
                                                     else " in advance)")
    if sooner:
        return min(counts), f"evaluations (at most: {' or '.join(sooner)} may end sooner)"
    return min(counts), "evaluations"


def _beats(score: float, best: float) -> bool:
    """Whether a later evaluation's ``score`` displaces the ``best`` so far: the first of
    :func:`~speedynas_search.metrics.rank_order` (finite scores first, larger first, ties to
    the earlier evaluation)."""
    return math.isfinite(score) and (not math.isfinite(best) or score > best)


class Evaluator:
    """Implements :class:`~speedynas_search.strategies.Evaluations` for one search run."""

    def __init__(self, space: SearchSpace, pool: Sequence[Arch], fidelity: Fidelity,
                 fidelities: Sequence[Fidelity], limit: LimitConfig, store: ResultsStore,
                 stored: dict[int, Record], compute: Compute, joint: dict[str, JointScores],
                 truth: Callable[[str], float | None] | None = None,
                 space_values: Sequence[float] | None = None, progress: bool = True,
                 env: DistEnv = DistEnv(), planned: int | None = None,
                 labels: LabelBook | None = None, lookups: frozenset[str] = frozenset()) -> None:
        self.space, self._pool, self.fidelity = space, list(pool), fidelity
        self.fidelities, self.limit, self.store = list(fidelities), limit, store
        self.compute, self.joint, self.truth, self.env = compute, joint, truth, env
        self.labels, self.lookups = labels, lookups  # lookups: fitnesses that read a table
        self._paid: dict[str, TableObjective] = {}  # paid objectives, each resolved once
        self.space_values = sorted(v for v in space_values or () if math.isfinite(v))
        self.stored = stored  # index -> record: what earlier runs recorded, then this run's
        self.records: list[Record] = []
        self.spent = Spent()
        self.label_seconds = 0.0  # this run's time asking for labels (a training, on demand)
        self.trace: list[dict[str, Any]] = []
        self.compute_seconds = 0.0
        self._keys: set[tuple[str, int]] = set()
        self._eligible: dict[int, list[Record]] = {}  # steps -> its records, in order
        # joint fitness: (len(records) when ranked, scores); per-candidate: (scores, order)
        self._joint: dict[Fidelity, tuple[int, dict[int, float]]] = {}
        self._single: dict[Fidelity, tuple[dict[int, float], list[int]]] = {}
        self._reached: set[int] = set()  # steps among the first ``_traced`` records
        self._traced = 0
        self._running: dict[Fidelity, _Running] = {}
        total, desc = progress_total(planned, limit, self.fidelities)
        self.bar = tqdm(total=total, desc=desc, unit="arch", dynamic_ncols=True,
                        disable=not (progress and env.is_main))

    # ------------------------------------------------------------------ Evaluations protocol
    def pool(self, count: int | None = None) -> list[Arch]:
        if count is not None and count > len(self._pool):
            raise SpeedyNASError(f"the strategy starts from {count} candidates but "
                                 f"candidates.num={len(self._pool)}; set candidates.num >= {count}")
        return self._pool[:count]

    def is_new(self, arch: Arch, fidelity: Fidelity) -> bool:
        return (str(arch), fidelity.steps) not in self._keys

    def evaluate(self, archs: Sequence[Arch], fidelity: Fidelity) -> list[Record]:
        room = self.room(fidelity)
        if room == 0:
            raise LimitReached
        batch = list(archs)[:room] if room is not None else list(archs)
        first = len(self.records)
        todo = []
        for index, arch in enumerate(batch, first):
            stored = self.stored.get(index)
            if stored is None:
                todo.append((index, arch))
            elif stored.arch != str(arch) or stored.steps != fidelity.steps:
                raise SpeedyNASError(
                    f"{self.store.path}: evaluation {index} is {stored.arch} at "
                    f"{stored.steps} steps, but the strategy now asks for {arch} at "
                    f"{fidelity.steps}: the results belong to another search (strategy, "
                    "fitness or candidates changed?); use another name=...")
        start = time.perf_counter()
        for index, arch in todo[self.env.rank::self.env.world_size]:
            record = self.compute(index, arch, fidelity)
            self.store.append(record)
            # as a resume reads it (non-finite scores as None)
            self.stored[index] = Record.from_json(json.loads(dumps_strict(record.to_json())))
            self.bar.update(self.env.world_size)
        if todo and self.env.distributed:
            self.stored = self.store.sync()
        self.compute_seconds += time.perf_counter() - start
        new = [self.stored[i] for i in range(first, first + len(batch))]
        spent_after = []
        for record in new:
            self.records.append(record)
            self._eligible.setdefault(record.steps, []).append(record)
            self._keys.add((record.arch, record.steps))
            self.spent.add(record, fidelity.fitness in self.lookups)
            spent_after.append(replace(self.spent))
        self.bar.update(len(new) - len(todo))
        for count, spent in enumerate(spent_after, first + 1):
            self.trace.append(self.incumbent(count, spent))
        if len(batch) < len(archs):
            raise LimitReached
        return new

    def label(self, archs: Sequence[Arch]) -> list[float]:
        return self.label_with(archs, ())[0]

    def label_with(self, archs: Sequence[Arch], objectives: Sequence[str]
                   ) -> tuple[list[float], list[list[float]]]:
        """The label of each arch and the value of each paid objective (a table column of
        :mod:`search_spaces.objectives`, read with the label and recorded with it), one label
        counted per arch: (labels, one list of values per objective)."""
        if self.labels is None:
            raise SpeedyNASError("this strategy pays for labels: set the labels section, e.g. "
                                 "labels.source=nb201 labels.column=cifar10_valid_val")
        for name in objectives:
            if name not in self._paid:
                self._paid[name] = table_objective(self.space, name)
        tables = [self._paid[name] for name in objectives]
        start = time.perf_counter()
        values, paid = self.labels.label_with(archs, tables)
        self.label_seconds += time.perf_counter() - start
        self.spent.labels += len(values)
        self.trace.append(self.incumbent(len(self.records), replace(self.spent)))
        return values, paid

    def fitness(self, fidelity: Fidelity) -> Mapping[int, float]:
        scores = self._scores(fidelity)
        if fidelity.fitness in self.joint:
            return FitnessView(scores, list(scores))  # ranked anew for every batch anyway
        return FitnessView(scores, self._single[fidelity][1])

    def _scores(self, fidelity: Fidelity) -> dict[int, float]:
        """Record index -> fitness at ``fidelity`` of every evaluation so far at its steps.
        A joint fitness is ranked anew once the records have grown; a per-candidate one is
        kept and extended by the records added since (each record is scored once)."""
        eligible = self._eligible.get(fidelity.steps, [])
        if fidelity.fitness in self.joint:
            cached = self._joint.get(fidelity)
            if cached is not None and cached[0] == len(self.records):
                return cached[1]
            values = self.joint[fidelity.fitness](fidelity.fitness, list(eligible),
                                                  fidelity.budget)
            scores = {r.index: (math.nan if v is None else float(v))
                      for r, v in zip(eligible, values)}
            self._joint[fidelity] = (len(self.records), scores)
            return scores
        scores, order = self._single.setdefault(fidelity, ({}, []))
        for record in eligible[len(order):]:  # the records added since (a list slice: O(new))
            scores[record.index] = record.score(fidelity.fitness, fidelity.budget)
            order.append(record.index)
        return scores

    # ------------------------------------------------------------------ limits and incumbent
    def room(self, fidelity: Fidelity) -> int | None:
        """How many evaluations at ``fidelity`` the limits still allow (``None``: no limit)."""
        b, spent = self.limit, self.spent
        if b.seconds is not None and spent.seconds >= b.seconds:
            return 0
        limits = []
        if b.evaluations is not None:
            limits.append(b.evaluations - spent.evaluations)
        if b.steps is not None and fidelity.steps > 0:
            limits.append((b.steps - spent.steps) // fidelity.steps)
        return max(0, min(limits)) if limits else None

    def incumbent(self, count: int, spent: Spent) -> dict[str, Any]:
        """The best of the first ``count`` evaluations by the fitness of the highest fidelity
        they reach (a joint fitness: ranked over the whole batch just evaluated, which ran
        together), with what was ``spent`` to find it (and its true accuracy and rank in the
        space, when known)."""
        if self.labels is not None and self.labels.count:
            return self.labelled_incumbent(spent)
        if count < self._traced:  # an earlier prefix: start over
            self._reached, self._traced = set(), 0
        self._reached.update(r.steps for r in self.records[self._traced:count])
        self._traced = count
        fidelity = next((f for f in reversed(self.fidelities) if f.steps in self._reached),
                        self.fidelities[-1])
        scores = self._scores(fidelity)
        best = self._best_before(fidelity, scores, count)
        entry: dict[str, Any] = {
            "evaluations": spent.evaluations, "steps": spent.steps, "seconds": spent.seconds,
            "fitness": fidelity.fitness, "budget": fidelity.budget}
        if self.lookups:  # a table-mode search: every evaluation is a label
            entry["labels"] = spent.labels
        if best is None:
            return entry
        arch = self.stored[best].arch
        entry.update(index=best, arch=arch, score=scores[best])
        return self._with_truth(entry, arch)

    def labelled_incumbent(self, spent: Spent) -> dict[str, Any]:
        """The best-labelled arch so far (a strategy that pays for labels is judged by them),
        with what was ``spent``, labels included."""
        entry: dict[str, Any] = {
            "evaluations": spent.evaluations, "steps": spent.steps, "seconds": spent.seconds,
            "labels": spent.labels, "fitness": "label", "budget": 0}
        best = self.labels.best() if self.labels is not None else None
        if best is None:
            return entry
        entry.update(arch=best[1], score=best[2])
        return self._with_truth(entry, best[1])

    def _with_truth(self, entry: dict[str, Any], arch: str) -> dict[str, Any]:
        """``entry`` with ``arch``'s true accuracy and rank in the space, when known."""
        truth = self.truth(arch) if self.truth is not None else None
        if truth is not None:
            entry["truth"] = truth
            if self.space_values:
                entry["space_rank"] = 1 + len(self.space_values) - bisect.bisect_right(
                    self.space_values, truth)
        return entry

    def _best_before(self, fidelity: Fidelity, scores: Mapping[int, float],
                     count: int) -> int | None:
        """The best of the evaluations at ``fidelity`` among the first ``count`` by ``scores``
        (the first of their :func:`~speedynas_search.metrics.rank_order`), kept as a running
        best: each evaluation is looked at once per ``scores`` (a joint fitness: once per
        batch it is ranked anew), not once per incumbent."""
        running = self._running.get(fidelity)
        eligible = self._eligible.get(fidelity.steps, [])
        if (running is None or running.scores is not scores
                or (running.scanned and eligible[running.scanned - 1].index >= count)):
            running = self._running[fidelity] = _Running(scores)
        while running.scanned < len(eligible) and eligible[running.scanned].index < count:
            index = eligible[running.scanned].index
            if running.best is None or _beats(scores[index], scores[running.best]):
                running.best = index
            running.scanned += 1
        return running.best

    def close(self) -> None:
        self.bar.close()

