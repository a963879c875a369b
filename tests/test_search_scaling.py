"""A search's bookkeeping grows linearly with its evaluations (a 100,000-query table-mode
search must not slow down per query as it goes): counted, never timed.

Each test runs the same search at two sizes and compares the work done per evaluation:
calls of the fitness read (``Record.score``), and reads of the records' fields (a record type
that counts them) while the strategy is replayed from ``results.jsonl`` as a resume does. Work
that grew with the records so far (the incumbent re-ranking every earlier evaluation after
each one, the fitness re-read after each batch) would make the larger search's work per
evaluation several times the smaller's. The incumbent trace is also checked against the
definition computed the slow way.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import zlib
from pathlib import Path

import numpy as np
import pytest

import search_spaces
from speedynas_search.evaluator import Evaluator, FitnessView
from speedynas_search.metrics import rank_order
from speedynas_search.results_store import Record
from speedynas_search.search_config import LimitConfig
from speedynas_search.search_run import Search
from speedynas_search.strategies import Fidelity, LimitReached, create_strategy
from speedynas_search.strategies.sample import Sample

from .conftest import REPO, search_config

SPACE = search_spaces.create("nb201")
FITNESS = "table"
#: The larger search's work per evaluation may exceed the smaller's by this factor (linear
#: bookkeeping: about 1; work that grows with the records so far: about the size ratio, 4).
SLACK = 1.25


def score_of(arch: str, budget: int) -> float:
    """A fixed, table-like score of ``arch`` at ``budget``: many ties, some NaN and inf."""
    code = zlib.crc32(f"{arch}@{budget}".encode())
    if code % 31 == 0:
        return math.nan
    if code % 97 == 0:
        return math.inf
    return (code % 500) / 10


FIELDS = {f.name for f in dataclasses.fields(Record)}


class CountingRecord(Record):
    """A results record that counts the reads of its fields."""

    reads = 0

    def __getattribute__(self, name):
        if name in FIELDS:
            CountingRecord.reads += 1
        return super().__getattribute__(name)


class MemoryStore:
    """What the evaluator needs of a :class:`~speedynas_search.results_store.ResultsStore`."""

    path = Path("memory/results.jsonl")

    def __init__(self) -> None:
        self.records: list[Record] = []

    def append(self, record: Record) -> None:
        self.records.append(record)


def compute(index, arch, fidelity):
    """A table-mode evaluation: no fine-tune, the score read off a fixed function."""
    return Record(index=index, arch=str(arch), steps=fidelity.steps, params=0, flops=None,
                  seconds=0.001, scores={FITNESS: {str(fidelity.budget): score_of(
                      str(arch), fidelity.budget)}}, trajectory={})


def refuse(index, arch, fidelity):
    raise AssertionError(f"evaluation {index} recomputed on replay")


def run(strategy_name: str, n: int, options: dict, *, stored=None, joint=None,
        budget: int | None = None, compute_fn=compute) -> Evaluator:
    """Run ``strategy_name`` over a draw of ``n`` candidates in table mode."""
    strategy = create_strategy(strategy_name, SPACE, **options)
    fidelity = Fidelity(0, FITNESS, 0)
    rng = np.random.default_rng(n)
    pool = [SPACE.sample(rng) for _ in range(n)]
    evaluator = Evaluator(SPACE, pool, fidelity, strategy.fidelities(fidelity),
                          LimitConfig(evaluations=budget), MemoryStore(),
                          dict(stored or {}), compute_fn, joint or {},
                          truth=lambda arch: score_of(arch, 12), progress=False)
    try:
        strategy.run(evaluator)
    except LimitReached:
        pass
    evaluator.close()
    return evaluator


STRATEGIES = {
    "sample": lambda n: ({"batch": 10}, None),
    "evolution": lambda n: ({"population": 20, "children": 10, "tournament": 5}, n),
    "halving": lambda n: ({"sizes": [n, n // 4, n // 16], "rung_steps": [0, 10, 20],
                           "batch": 10}, None),
    "local": lambda n: ({}, n),
}


def work_per_evaluation(strategy_name: str, n: int, monkeypatch) -> tuple[float, float]:
    """Fitness reads per evaluation of a fresh search of ``n`` candidates, and record-field
    reads per evaluation when it is replayed (resumed) from its records."""
    calls = 0
    score = Record.score

    def counted(*args):
        nonlocal calls
        calls += 1
        return score(*args)

    options, budget = STRATEGIES[strategy_name](n)
    with monkeypatch.context() as patch:
        patch.setattr(Record, "score", counted)
        fresh = run(strategy_name, n, options, budget=budget)
    stored = {r.index: CountingRecord(**vars(r)) for r in fresh.records}
    CountingRecord.reads = 0
    replayed = run(strategy_name, n, options, budget=budget, stored=stored, compute_fn=refuse)
    reads = CountingRecord.reads
    assert repr(replayed.trace) == repr(fresh.trace)
    assert [r.to_json() for r in replayed.records] == [r.to_json() for r in fresh.records]
    evaluations = len(fresh.records)
    return calls / evaluations, reads / evaluations


@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_bookkeeping_per_evaluation_does_not_grow_with_the_search(strategy_name, monkeypatch):
    small = work_per_evaluation(strategy_name, 400, monkeypatch)
    large = work_per_evaluation(strategy_name, 1600, monkeypatch)
    # every evaluation's fitness is read once, however often the strategy asks for it
    assert small[0] <= 1 and large[0] <= 1
    assert large[1] <= SLACK * small[1], (
        f"{strategy_name}: {large[1]:.1f} record reads per evaluation at 1600 candidates, "
        f"{small[1]:.1f} at 400: the bookkeeping grows with the records so far")


def reference_trace(evaluator: Evaluator, batches: list[int],
                    scores_of=None) -> list[tuple]:
    """The incumbent after each evaluation by its definition, the slow way: the first of
    ``rank_order`` over the evaluations so far at the highest fidelity they reach, by scores
    taken (``scores_of``: ranked jointly) over the whole batch that evaluation ran in."""
    records, out, end = evaluator.records, [], 0
    ends = []
    for size in batches:
        end += size
        ends.append(end)
    for count in range(1, len(records) + 1):
        batch_end = next(e for e in ends if e >= count)
        reached = {r.steps for r in records[:count]}
        fidelity = next(f for f in reversed(evaluator.fidelities) if f.steps in reached)
        eligible = [r for r in records[:batch_end] if r.steps == fidelity.steps]
        values = (scores_of(eligible) if scores_of is not None
                  else [r.score(fidelity.fitness, fidelity.budget) for r in eligible])
        seen = [(r.index, v) for r, v in zip(eligible, values) if r.index < count]
        best = seen[rank_order([v for _, v in seen])[0]]
        out.append((count, fidelity.fitness, fidelity.budget, best[0], best[1]))
    return out


def trace_of(evaluator: Evaluator) -> list[tuple]:
    return [(t["evaluations"], t["fitness"], t["budget"], t["index"], t["score"])
            for t in evaluator.trace]


def same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal, NaN equal to NaN."""
    key = [tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in t)
           for t in a]
    return key == [tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in t)
                   for t in b]


def test_the_running_incumbent_is_the_best_so_far_by_definition():
    """Ties go to the earlier evaluation, NaN and inf rank last, the highest fidelity reached
    judges (halving), as the first of ``rank_order`` over everything so far would."""
    sample = run("sample", 300, {"batch": 7})
    assert same(trace_of(sample), reference_trace(sample, [7] * 42 + [6]))
    halving = run("halving", 240, {"sizes": [240, 60, 15], "rung_steps": [0, 10, 20],
                                   "batch": 8})
    assert same(trace_of(halving), reference_trace(halving, [8] * 30 + [8] * 7 + [4, 8, 7]))


def test_a_joint_fitness_ranks_each_batch_over_everything_so_far():
    """A joint fitness (here: closeness to the median of everything evaluated) changes every
    earlier score with each batch; the incumbent of each evaluation of a batch is judged by
    the ranking that batch was given."""
    def closeness(records):
        raw = [r.score(FITNESS, 0) for r in records]
        finite = [v for v in raw if math.isfinite(v)]
        middle = statistics.median(finite) if finite else 0.0
        return [-abs(v - middle) if math.isfinite(v) else math.nan for v in raw]

    asked = []

    def joint(name, records, budget):
        asked.append(len(records))
        return closeness(records)

    evaluator = run("sample", 200, {"batch": 9}, joint={FITNESS: joint})
    batches = [9] * 22 + [2]
    assert same(trace_of(evaluator), reference_trace(evaluator, batches, closeness))
    # ranked once per batch, over everything evaluated by then
    assert asked == list(np.cumsum(batches))


def test_the_fitness_is_a_read_only_snapshot_of_what_was_evaluated_when_asked():
    fidelity = Fidelity(0, FITNESS, 0)
    pool = [SPACE.sample(np.random.default_rng(0)) for _ in range(30)]
    evaluator = Evaluator(SPACE, pool, fidelity, [fidelity], LimitConfig(), MemoryStore(),
                          {}, compute, {}, progress=False)
    first = evaluator.evaluate(pool[:10], fidelity)
    before = evaluator.fitness(fidelity)
    evaluator.evaluate(pool[10:25], fidelity)
    after = evaluator.fitness(fidelity)
    assert isinstance(before, FitnessView) and len(before) == 10 and len(after) == 25
    assert list(before) == list(range(10)) and 12 not in before and 12 in after
    with pytest.raises(KeyError):
        before[12]
    expected = {r.index: score_of(r.arch, 0) for r in first}
    assert same(sorted(before.items()), sorted(expected.items()))
    assert same(sorted(after.items()),
                sorted((r.index, score_of(r.arch, 0)) for r in evaluator.records))
    with pytest.raises(TypeError):
        before[0] = 1.0  # read-only


def test_a_table_mode_search_reads_each_fitness_once(tiny_run, monkeypatch):
    """The real search (table estimator, no fine-tune): fitness reads while the strategy
    runs grow with the evaluations, not with their square."""
    calls, running = [], []
    score, strategy_run = Record.score, Sample.run

    def counted(record, *args):
        if running:
            calls.append(record.index)
        return score(record, *args)

    def counting_run(strategy, evaluations):
        running.append(True)
        try:
            strategy_run(strategy, evaluations)
        finally:
            running.clear()

    monkeypatch.setattr(Record, "score", counted)
    monkeypatch.setattr(Sample, "run", counting_run)
    per_evaluation = []
    for n in (40, 160):
        calls.clear()
        cfg = search_config(tiny_run, "progress=false", f"name=scaling{n}",
                            f"candidates.num={n}", "limit.evaluations=null",
                            "strategy.name=sample", "strategy.batch=5",
                            "report.resamples=0",
                            config=REPO / "configs" / "search_strategies_table.yaml")
        summary = Search(tiny_run, cfg).run()
        assert summary["strategy"]["spent"]["evaluations"] == n
        assert sorted(calls) == list(range(n))  # each evaluation's fitness read once
        per_evaluation.append(len(calls) / n)
    assert per_evaluation == [1.0, 1.0]
