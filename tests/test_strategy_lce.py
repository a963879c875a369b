"""The ``lce`` strategy against a stand-in for the search's evaluations whose fine-tune curves
are exact pow3 curves, so the extrapolation, and the archs it must promote, are known; and one
search end to end on the toy supernet."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

import search_spaces
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.errors import SpeedyNASError
from estimators import Candidate, Trajectory, create_estimator
from search_spaces import Arch
from speedynas_search.metrics import rank_order
from speedynas_search.results_store import Record
from speedynas_search.strategies import Fidelity, LimitReached, create_strategy

from .conftest import REPO, TIMING, run_script

SPACE = search_spaces.create("nb201")
SEARCH = Fidelity(300, "tse", 300)  # the search's own fine-tune and fitness
WEIGHTS = np.random.default_rng(0).uniform(0, 1, size=(2, len(SPACE.encode(SPACE.sample(
    np.random.default_rng(0))))))


def losses(arch: Arch | str, steps: int) -> list[float]:
    """Arch's fine-tune curve: pow3 c + a x^-alpha with its parameters set by its encoding, so
    curves cross (a high start may end low)."""
    code = np.asarray(SPACE.encode(SPACE.parse(str(arch))))
    low, rate = WEIGHTS[:2] @ code / code.sum()
    x = np.arange(1, steps + 1, dtype=float)  # a low asymptote comes with a high start
    return list(4 * low ** 2 + (9 - 8 * low) * x ** -(rate - 0.1))


def loss_at(arch: str, steps: int) -> float:
    return losses(arch, steps)[-1]


class Curves:
    """The :class:`~speedynas_search.strategies.Evaluations` a strategy sees, over
    :func:`losses`: each evaluation is scored by the fidelity's (real) estimator; ``limit``
    evaluations at most, as the search's ``limit.evaluations``."""

    def __init__(self, pool: Sequence[Arch], estimators: Mapping[str, object],
                 limit: int | None = None) -> None:
        self.space, self.fidelity, self._pool = SPACE, SEARCH, list(pool)
        self.estimators, self.limit = estimators, limit
        self.records: list[Record] = []

    def pool(self, count: int | None = None) -> list[Arch]:
        return self._pool[:count]

    def is_new(self, arch: Arch, fidelity: Fidelity) -> bool:
        return all((r.arch, r.steps) != (str(arch), fidelity.steps) for r in self.records)

    def evaluate(self, archs: Sequence[Arch], fidelity: Fidelity) -> list[Record]:
        room = None if self.limit is None else self.limit - len(self.records)
        batch = list(archs)[:room]
        new = []
        for arch in batch:
            trajectory = Trajectory(train_losses=losses(arch, fidelity.steps))
            score = self.estimators[fidelity.fitness].score(
                trajectory, Candidate(str(arch), 1, None), fidelity.budget)
            new.append(Record(index=len(self.records) + len(new), arch=str(arch),
                              steps=fidelity.steps, params=1, flops=None, seconds=0.0,
                              scores={fidelity.fitness: {str(fidelity.budget): score}},
                              trajectory={}))
        self.records += new
        if len(batch) < len(archs):
            raise LimitReached
        return new

    def fitness(self, fidelity: Fidelity) -> Mapping[int, float]:
        return {r.index: r.score(fidelity.fitness, fidelity.budget)
                for r in self.records if r.steps == fidelity.steps}


ESTIMATORS = {"tse": create_estimator("tse"), "tlmini": create_estimator("tlmini"),
              "lce": create_estimator("lce", family="pow3", target=300)}


def draw(count: int, seed: int = 0) -> list[Arch]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(count)]


def run(pool: Sequence[Arch], limit: int | None = None, **options) -> Curves:
    evaluations = Curves(pool, ESTIMATORS, limit)
    create_strategy("lce", SPACE, **options).run(evaluations)
    return evaluations


def test_the_top_n_by_extrapolated_loss_are_fine_tuned_to_max_steps():
    pool = draw(40)
    records = run(pool, few_steps=10, top_n=5).records
    assert [(r.arch, r.steps) for r in records[:40]] == [(str(a), 10) for a in pool]
    promoted = [r.arch for r in records[40:]]
    assert [r.steps for r in records[40:]] == [300] * 5
    # The curves are exact pow3 curves: the extrapolation is the true loss at 300 steps.
    by_truth = sorted(map(str, pool), key=lambda a: loss_at(a, 300))[:5]
    assert promoted == by_truth
    # ... which the loss observed at 10 steps would not have found (the curves cross).
    by_observed = sorted(map(str, pool), key=lambda a: loss_at(a, 10))[:5]
    assert set(promoted) != set(by_observed)


def test_the_inner_strategy_is_capped_and_its_options_are_its_own():
    pool = draw(60)
    records = run(pool, inner=create_strategy("sample", SPACE, batch=7), few_steps=10,
                  few_evaluations=25, top_n=3).records
    assert [r.steps for r in records] == [10] * 25 + [300] * 3
    assert [r.arch for r in records[:25]] == [str(a) for a in pool[:25]]
    strategy = create_strategy("lce", SPACE, few_evaluations=25, top_n=3)
    assert strategy.evaluation_count(60) == 28 and strategy.evaluation_count(2) == 4


def test_evolution_inside_is_deterministic_and_promotes_its_best():
    options = dict(inner=create_strategy("evolution", SPACE, population=8, tournament=3,
                                         children=4, seed=1),
                   few_steps=12, few_evaluations=32, top_n=4, max_steps=200)
    first, again = run(draw(50), **options), run(draw(50), **options)
    assert [(r.arch, r.steps) for r in first.records] == [(r.arch, r.steps)
                                                          for r in again.records]
    few = first.records[:32]
    assert [r.steps for r in first.records] == [12] * 32 + [200] * 4
    assert len({r.arch for r in few}) == 32  # evolution proposes new archs only
    best = [few[i].arch for i in rank_order([r.score("lce", 12) for r in few])[:4]]
    assert [r.arch for r in first.records[32:]] == best
    assert best == sorted({r.arch for r in few}, key=lambda a: loss_at(a, 300))[:4]


def test_a_limit_of_the_search_ends_it_and_replay_reproduces_the_prefix():
    pool = draw(30)
    whole = run(pool, few_steps=10, top_n=5)
    for limit in (20, 33):  # within the inner strategy's evaluations, and among the top_n
        stopped = Curves(pool, ESTIMATORS, limit=limit)
        with pytest.raises(LimitReached):
            create_strategy("lce", SPACE, few_steps=10, top_n=5).run(stopped)
        assert [(r.arch, r.steps) for r in stopped.records] == [
            (r.arch, r.steps) for r in whole.records[:limit]]


def test_fidelities_are_cheapest_first_and_the_last_is_the_search_fitness():
    strategy = create_strategy("lce", SPACE, few_steps=10, few_fitness="lce", top_n=5)
    assert strategy.fidelities(SEARCH) == [Fidelity(10, "lce", 10), SEARCH]
    capped = create_strategy("lce", SPACE, few_steps=10, max_steps=100)
    assert capped.fidelities(SEARCH) == [Fidelity(10, "lce", 10), Fidelity(100, "tse", 100)]
    with pytest.raises(SpeedyNASError, match="few_steps=400 must be below the 300"):
        create_strategy("lce", SPACE, few_steps=400).fidelities(SEARCH)


@pytest.mark.parametrize("options, fragment", [
    ({"inner": create_strategy("halving", SPACE)}, "inner.name=halving evaluates at several"),
    ({"inner": create_strategy("evolution", SPACE)}, "set strategy.few_evaluations"),
    ({"few_steps": 50, "max_steps": 50}, "few_steps=50 must be below strategy.max_steps=50"),
    ({"top": 3}, "has no option 'top'"),
])
def test_bad_settings_are_refused_naming_them(options, fragment):
    with pytest.raises(SpeedyNASError, match=fragment):
        create_strategy("lce", SPACE, **options)


def test_lce_cannot_wrap_itself():
    inner = create_strategy("lce", SPACE)
    with pytest.raises(SpeedyNASError, match="inner.name=lce evaluates at several"):
        create_strategy("lce", SPACE, inner=inner)


@pytest.mark.e2e
def test_search_with_lce_on_the_toy_supernet_promotes_the_best_extrapolations(toy_supernet):
    args = ["--run-dir", str(toy_supernet), "--config", str(REPO / "configs" / "search_toy.yaml"),
            "name=lce", "retrain.enabled=false", "threads=1", "count_flops=false",
            "ground_truth.source=nb201", "finetune.budgets=[8]",
            "estimators.names=[tse,lce,params]", "estimators.lce.target=8",
            "strategy.name=lce", "strategy.inner.name=sample", "strategy.few_steps=4",
            "strategy.top_n=3", "strategy.fitness=tse"]
    run_script("search.py", *args)
    out = toy_supernet / "search" / "lce"
    records = read_jsonl(out / "results.jsonl")
    assert [r["steps"] for r in records] == [4] * 12 + [8] * 3
    few = records[:12]
    best = [few[i]["arch"] for i in rank_order([r["scores"]["lce"]["4"] for r in few])[:3]]
    assert [r["arch"] for r in records[12:]] == best
    summary = json.loads((out / "summary.json").read_text())
    incumbent = summary["strategy"]["incumbent"]
    assert incumbent["fitness"] == "tse" and incumbent["budget"] == 8
    assert incumbent["arch"] == max(records[12:], key=lambda r: r["scores"]["tse"]["8"])["arch"]
    assert summary["strategy"]["spent"]["steps"] == 12 * 4 + 3 * 8
    assert math.isfinite(incumbent["truth"])
    (out / "summary.json").unlink()  # replayed from results.jsonl: nothing is fine-tuned again
    run_script("search.py", *args)
    again = read_jsonl(out / "results.jsonl")
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in again] == \
           [{k: v for k, v in r.items() if k not in TIMING} for r in records]
