"""Combination estimators: rank_mean (with ties), the learned combination and its held-out
reporting."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

import search_spaces
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.errors import SpeedyNASError
from estimators import Candidate, Trajectory, create_estimator
from estimators.combo import rank_mean, set_ranks
from speedynas_search import format_table, rank_metrics, summarize
from speedynas_search.results_store import Record
from speedynas_search.search_run import Search
from search_spaces.nb201_table import NB201Truth, load_table

from .conftest import REPO, search_config

TEST = NB201Truth(search_spaces.create("nb201"), column="cifar10_test")
VALID = NB201Truth(search_spaces.create("nb201"), column="cifar10_valid_val")


def test_set_ranks_average_ties_and_put_non_finite_lowest():
    assert set_ranks([3.0, 1.0, 3.0, math.nan]).tolist() == [3.5, 2.0, 3.5, 1.0]
    assert set_ranks([math.inf, 0.0, math.nan, -1.0]).tolist() == [1.5, 4.0, 1.5, 3.0]
    assert set_ranks([]).tolist() == []


def test_rank_mean_hand_example_with_ties():
    a = [3.0, 1.0, 3.0, math.nan]     # ranks 3.5, 2, 3.5, 1
    b = [10.0, 20.0, 30.0, 20.0]      # ranks 1, 2.5, 4, 2.5
    assert rank_mean([a, b]) == [2.25, 2.25, 3.75, 1.75]
    assert rank_mean([b]) == [1.0, 2.5, 4.0, 2.5]
    with pytest.raises(ValueError):
        rank_mean([])


def _set(losses: list[float], params: list[int]) -> tuple[list[Trajectory], list[Candidate]]:
    trajectories = [Trajectory(train_losses=[loss, loss]) for loss in losses]
    candidates = [Candidate(f"a{i}", params=p, flops=2 * p) for i, p in enumerate(params)]
    return trajectories, candidates


def test_combo_rank_mean_of_members():
    trajectories, candidates = _set([1.0, 2.0, 1.0, 3.0], [30, 10, 20, 20])
    # tse = -2l: -2, -4, -2, -6 -> ranks 3.5, 2, 3.5, 1; params -> ranks 4, 1, 2.5, 2.5
    combo = create_estimator("combo")
    assert combo.score_set(trajectories, candidates, 2) == [3.75, 1.5, 3.0, 1.75]
    assert combo.needs == frozenset({"train_losses"}) and combo.joint and not combo.learned
    assert combo.describe() == "combo(members=tse+params, method=rank_mean)"
    with pytest.raises(SpeedyNASError, match=r"'tse'.*B=3"):
        combo.score_set(trajectories, candidates, 3)
    with pytest.raises(SpeedyNASError, match=r"'combo'.*budget 0 must be an integer >= 1"):
        combo.check_budget(0)
    assert create_estimator("combo", members=["params"]).min_budget() == 0


def test_combo_options_are_checked():
    for options, fragment in [({"members": []}, "'members' must list"),
                              ({"members": "tse"}, "'members' must list"),
                              ({"members": ["tse", "tsee"]}, "unknown estimator 'tsee'"),
                              ({"members": ["combo"]}, "member 'combo' scores only whole sets"),
                              ({"method": "mean"}, "'method' must be one of rank_mean, learned"),
                              ({"fit_size": 1}, "'fit_size' must be an integer >= 2"),
                              ({"seed": -1}, "'seed' must be an integer >= 0")]:
        with pytest.raises(SpeedyNASError, match=fragment):
            create_estimator("combo", **options)


# --------------------------------------------------------------------------- learned

N = 40


def _learned_set() -> tuple[list[Trajectory], list[Candidate], dict[str, float | None]]:
    """40 candidates whose true accuracy grows with -loss and params (plus noise); a39 is a
    duplicate of a0; a38 has no ground truth."""
    rng = np.random.default_rng(0)
    quality = rng.uniform(0, 1, N)
    losses = (2.0 - quality + 0.1 * rng.standard_normal(N)).tolist()
    params = (1000 * (1 + quality + 0.2 * rng.uniform(0, 1, N))).astype(int).tolist()
    trajectories, candidates = _set(losses, params)
    candidates[39] = Candidate("a0", params=candidates[0].params, flops=candidates[0].flops)
    trajectories[39] = trajectories[0]
    truths: dict[str, float | None] = {c.arch: 80.0 + 10 * q for c, q in zip(candidates, quality)}
    truths["a38"] = None
    return trajectories, candidates, truths


def test_learned_combo_never_reports_a_candidate_it_was_fitted_on():
    trajectories, candidates, truths = _learned_set()
    est = create_estimator("combo_learned", fit_size=20, seed=1)
    assert est.learned and est.joint
    scores = est.score_set(trajectories, candidates, 2, truths)
    fitted = {c.arch for c, s in zip(candidates, scores) if math.isnan(s)}
    assert len(fitted) == 20 and "a38" not in fitted          # only archs with ground truth
    assert math.isnan(scores[0]) == math.isnan(scores[39])    # a duplicate shares its fate
    # The predictions never depend on the truths of the candidates they score.
    changed = {a: (t if a in fitted else -t if t is not None else None) for a, t in truths.items()}
    assert est.score_set(trajectories, candidates, 2, changed) == pytest.approx(scores,
                                                                                nan_ok=True)
    kept = [i for i, s in enumerate(scores) if not math.isnan(s) and truths[candidates[i].arch]]
    rho = stats.spearmanr([scores[i] for i in kept], [truths[candidates[i].arch] for i in kept])[0]
    assert rho > 0.5
    # Seeded: the same fit set again, another with another seed.
    assert est.score_set(trajectories, candidates, 2, truths) == pytest.approx(scores, nan_ok=True)
    other = create_estimator("combo", method="learned", fit_size=20, seed=2)
    other_scores = other.score_set(trajectories, candidates, 2, truths)
    assert {c.arch for c, s in zip(candidates, other_scores) if math.isnan(s)} != fitted


def test_learned_combo_needs_enough_ground_truth():
    trajectories, candidates, truths = _learned_set()
    est = create_estimator("combo_learned", fit_size=20)
    with pytest.raises(SpeedyNASError, match="'combo_learned' is learned: it needs ground truth"):
        est.score_set(trajectories, candidates, 2)
    few = {a: t for a, t in list(truths.items())[:20]}
    with pytest.raises(SpeedyNASError, match="only 20 distinct archs have one"):
        est.score_set(trajectories, candidates, 2, few)


def test_report_leaves_fitted_candidates_out_of_a_learned_estimator():
    trajectories, candidates, truths = _learned_set()
    learned = create_estimator("combo_learned", fit_size=20)
    tse = create_estimator("tse")
    results = [Record(index=i, arch=c.arch, steps=2, params=c.params, flops=c.flops,
                      seconds=0.0, scores={}, trajectory={}) for i, c in enumerate(candidates)]
    for est in (learned, tse):
        values = est.score_set(trajectories, candidates, 2, truths if est.learned else None)
        for record, value in zip(results, values):
            record.scores[est.name] = {"2": value}
    summary = summarize(results, truths, ["tse", "combo_learned"], [2], {},
                        learned=["combo_learned"])
    evaluated = sum(1 for r in results if not math.isnan(r.scores["combo_learned"]["2"])
                    and truths[r.arch] is not None)
    assert summary["metrics"]["combo_learned"]["2"]["n"] == evaluated
    assert summary["metrics"]["tse"]["2"]["n"] == N - 1
    assert summary["learned"] == {"combo_learned": {"fitted": 21}}  # 20 archs, a0 twice
    table = format_table(summary)
    assert "| combo_learned * |" in table and "the 21 candidates it was fitted on" in table


def test_learned_combo_learns_from_the_nb201_encoding():
    """300 NB201 archs with their table accuracies and a member that says nothing (every
    params value equal): only the arch encoding can rank them, and it does on held-out archs."""
    space = search_spaces.create("nb201")
    table = load_table()
    accuracy = table.column("cifar10_test")
    archs = list(space.enumerate())
    rows = np.random.default_rng(0).choice(len(archs), 300, replace=False)
    candidates = [Candidate(str(archs[r]), 1, None, tuple(space.encode(archs[r]))) for r in rows]
    truths = {c.arch: float(accuracy[r]) for c, r in zip(candidates, rows)}
    trajectories = [Trajectory(train_losses=[]) for _ in candidates]
    for encoding, expected in ((False, None), (True, 0.5)):
        est = create_estimator("combo_learned", members=["params"], fit_size=100,
                               encoding=encoding)
        scores = est.score_set(trajectories, candidates, 0, truths)
        kept = [(s, truths[c.arch]) for c, s in zip(candidates, scores) if not math.isnan(s)]
        rho = rank_metrics(*zip(*kept), resamples=0)["spearman"]
        assert rho is None if expected is None else rho > expected
    with pytest.raises(SpeedyNASError, match="defines none"):
        create_estimator("combo_learned", members=["params"], encoding=True).score_set(
            trajectories, [replace(c, encoding=None) for c in candidates], 0, truths)
    with pytest.raises(SpeedyNASError, match="'encoding' applies to method=learned only"):
        create_estimator("combo", encoding=True)


def test_learned_combo_on_graph_features_with_each_model():
    """The same 300 archs and uninformative member: the graph features rank the held-out archs
    with every predictor model (a forest on them reaches 0.846 over all cells,
    results/graph_features), better than the one-hot encoding does."""
    space = search_spaces.create("nb201")
    accuracy = load_table().column("cifar10_test")
    archs = list(space.enumerate())
    rows = np.random.default_rng(0).choice(len(archs), 300, replace=False)
    candidates = [Candidate(str(archs[r]), 1, None, tuple(space.encode(archs[r])),
                            tuple(space.graph_features(archs[r]).values())) for r in rows]
    truths = {c.arch: float(accuracy[r]) for c, r in zip(candidates, rows)}
    trajectories = [Trajectory(train_losses=[]) for _ in candidates]

    def held_out_spearman(**options) -> float:
        est = create_estimator("combo_learned", members=["params"], fit_size=100, **options)
        scores = est.score_set(trajectories, candidates, 0, truths)
        kept = [(s, truths[c.arch]) for c, s in zip(candidates, scores) if not math.isnan(s)]
        return rank_metrics(*zip(*kept), resamples=0)["spearman"]

    one_hot = held_out_spearman(encoding=True)
    for model in ("gbt", "rf", "ensemble", "prior"):
        assert held_out_spearman(graph=True, model=model) > max(0.7, one_hot)
    with pytest.raises(SpeedyNASError, match="graph=true needs the arch graph features"):
        create_estimator("combo_learned", members=["params"], graph=True).score_set(
            trajectories, [replace(c, graph=None) for c in candidates], 0, truths)
    with pytest.raises(SpeedyNASError, match="'model' applies to method=learned only"):
        create_estimator("combo", model="rf")
    with pytest.raises(SpeedyNASError, match="'model' must be one of ensemble, gbt, prior, rf"):
        create_estimator("combo_learned", model="svm")


def test_a_search_reports_the_labels_its_learned_combination_fitted_on(tiny_run):
    """A guided table-mode search pays for 12 labels (validation accuracy) and its learned
    combination fits on 5 more (test accuracy): the summary counts all 17."""
    cfg = search_config(tiny_run, "progress=false", "name=learned_labels",
                        "estimators.names=[params, combo_learned(params)]",
                        "estimators.combo_learned.fit_size=5", "strategy.signals=[graph, size]",
                        "strategy.labels=12", "strategy.initial=4", "strategy.pool=20",
                        "strategy.batch=4", "strategy.mutations=10",
                        config=REPO / "configs" / "search_strategies_guided.yaml")
    summary = Search(tiny_run, cfg).run()
    out = tiny_run / "search" / "learned_labels"
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    column = f"combo_learned(params)@B{max(summary['budgets'])}"
    fitted = {row["arch"] for row in rows if not row[column]}
    assert len(rows) == len(read_jsonl(out / "results.jsonl")) > 5
    assert len(fitted) == 5 and all(TEST.lookup(a) is not None for a in fitted)
    labels = summary["labels"]
    assert labels["strategy"] == summary["strategy"]["spent"]["labels"] == 12
    assert labels["fitted"] == {"combo_learned(params)": 5} and labels["fitted_distinct"] == 5
    assert labels["total"] == 17 and labels["fitted_source"] == TEST.describe()
    assert labels["strategy_source"] == VALID.describe()
    line = ("labels used: 17 = 12 paid for by the strategy + 5 ground-truth labels learned "
            "estimators were fitted on (combo_learned(params): 5)")
    assert line in (out / "summary.md").read_text()
    assert json.loads((out / "summary.json").read_text())["labels"] == labels
