"""The search's progress bar: a total wherever the strategy or a limit gives one (the
evaluations actually made reach it), and a description that says when it is unknown or only
an upper bound."""
from __future__ import annotations

import numpy as np
import pytest

from speedynas_search.evaluator import Evaluator, progress_total
from speedynas_search.search_config import LimitConfig
from speedynas_search.strategies import Fidelity, create_strategy

from .test_search_scaling import FITNESS, SPACE, MemoryStore, compute, run

OWN = Fidelity(4, "tse", 4)
HALVING = {"sizes": [20, 5, 2], "rung_steps": [0, 4, 8]}
SOONER = "evaluations (at most: {} may end sooner)"


@pytest.mark.parametrize("name, options, limit, expected", [
    ("sample", {}, LimitConfig(), (30, "evaluations")),
    ("sample", {}, LimitConfig(evaluations=12), (12, "evaluations")),
    ("sample", {}, LimitConfig(steps=50), (12, "evaluations")),  # 50 steps of 4
    ("sample", {}, LimitConfig(seconds=9.0), (30, SOONER.format("limit.seconds"))),
    ("halving", HALVING, LimitConfig(), (27, "evaluations")),
    ("halving", HALVING, LimitConfig(evaluations=25, steps=40),
     (25, SOONER.format("limit.steps"))),  # rungs of 0, 4 and 8 steps
    ("evolution", {}, LimitConfig(evaluations=40, seconds=9.0),
     (40, SOONER.format("limit.seconds"))),
    ("evolution", {}, LimitConfig(seconds=9.0),
     (None, "evaluations (total unknown: until limit.seconds)")),
    ("local", {}, LimitConfig(), (None, "evaluations (total unknown in advance)")),
])
def test_the_total_is_the_fewest_evaluations_the_strategy_and_the_limits_allow(
        name, options, limit, expected):
    strategy = create_strategy(name, SPACE, **options)
    assert progress_total(strategy.evaluation_count(30), limit,
                          strategy.fidelities(OWN)) == expected


def test_limit_steps_do_not_count_evaluations_that_fine_tune_nothing():
    assert progress_total(None, LimitConfig(steps=10), [Fidelity(0, FITNESS, 0)]) == (
        None, "evaluations (total unknown in advance)")


@pytest.mark.parametrize("name, options", [("sample", {"batch": 7}),
                                           ("halving", {**HALVING, "batch": 3})])
def test_a_strategy_makes_the_evaluations_it_counts(name, options):
    count = create_strategy(name, SPACE, **options).evaluation_count(30)
    assert len(run(name, 30, options).records) == count


def test_the_evaluators_bar_shows_the_total_and_what_it_counts(capsys):
    fidelity = Fidelity(0, FITNESS, 0)
    pool = [SPACE.sample(np.random.default_rng(3)) for _ in range(8)]
    evaluator = Evaluator(SPACE, pool, fidelity, [fidelity], LimitConfig(evaluations=5),
                          MemoryStore(), {}, compute, {}, progress=True, planned=8)
    evaluator.evaluate(pool[:5], fidelity)
    evaluator.close()
    assert "evaluations: 100%" in capsys.readouterr().err
    assert (evaluator.bar.total, evaluator.bar.n, evaluator.bar.desc) == (5, 5, "evaluations")
