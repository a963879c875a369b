"""Pareto fronts of (score, cost) and their summary, markdown and plot."""
from __future__ import annotations

import math

import pytest

from speedynas_search import pareto_front, pareto_summary, plot_pareto
from speedynas_search.pareto import crowding_distances, hypervolume, nondominated_ranks
from speedynas_search.report import format_markdown, format_pareto
from speedynas_search.results_store import Record


def test_pareto_front_hand_example():
    #          0    1    2    3         4    5    6
    scores = [5.0, 3.0, 5.0, math.nan, 7.0, 7.0, 6.0]
    costs = [10.0, 5.0, 20.0, 1.0, 30.0, 30.0, 30.0]
    # 1 (cheapest finite), 0 (better than 1), 2 dominated by 0, 3 not finite,
    # 4 and 5 exact duplicates (both kept), 6 dominated by 4 at the same cost.
    assert pareto_front(scores, costs) == [1, 0, 4, 5]


def test_pareto_front_edge_cases():
    assert pareto_front([], []) == []
    assert pareto_front([math.nan, math.inf], [1.0, 2.0]) == []
    assert pareto_front([1.0, 1.0], [2.0, 1.0]) == [1]     # same score, cheaper wins
    assert pareto_front([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == [0, 1, 2]
    with pytest.raises(ValueError):
        pareto_front([1.0], [1.0, 2.0])


RESULTS = [
    Record(index=i, arch=arch, steps=4, params=params, flops=flops, seconds=0.0,
           scores={"e": {"4": score}}, trajectory={})
    for i, (arch, params, flops, score) in enumerate([
        ("|a~0|", 100, 900, 1.0), ("|b~0|", 200, 100, 2.0), ("|c~0|", 300, 300, 1.5),
        ("|d~0|", 50, 50, None)])  # None: NaN
]


def test_pareto_summary_lists_each_cost_front():
    pareto = pareto_summary(RESULTS, ["e"], 4)
    assert pareto["budget"] == 4
    assert [p["arch"] for p in pareto["fronts"]["e"]["params"]] == ["|a~0|", "|b~0|"]
    assert [p["arch"] for p in pareto["fronts"]["e"]["flops"]] == ["|b~0|"]
    assert pareto["fronts"]["e"]["flops"][0] == {"arch": "|b~0|", "score": 2.0, "params": 200,
                                                 "flops": 100}


def test_pareto_markdown_and_plot(tmp_path):
    pareto = pareto_summary(RESULTS, ["e"], 4)
    text = format_pareto(pareto)
    assert "| e | params | 2 | `\\|a~0\\|` (params 100, score 1) | `\\|b~0\\|`" in text
    md = format_markdown({"settings": {}, "n_candidates": 4, "n_evaluated": 0, "n_missing": 0,
                          "missing": [], "estimators": ["e"], "budgets": [4], "ks": [1],
                          "best_possible": {"top1": None},
                          "metrics": {"e": {"4": {"spearman": None, "kendall": None,
                                                  "top1": None}}},
                          "pareto": pareto})
    assert "## Pareto fronts" in md
    path = tmp_path / "pareto_params.png"
    plot_pareto(RESULTS, pareto, "params", path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_nondominated_sorting_by_hand():
    # (score, -cost): a and b are on the first front, c is dominated by a only, d by all,
    # e has a NaN and goes last.
    points = [(0.9, -2.0), (0.5, -1.0), (0.8, -3.0), (0.4, -4.0), (math.nan, -1.0)]
    assert nondominated_ranks(points) == [0, 0, 1, 2, 3]
    assert nondominated_ranks([(1.0, 1.0), (1.0, 1.0)]) == [0, 0]  # equal points: same front


def test_crowding_distance_favours_the_extremes_and_the_isolated():
    points = [(0.0, 4.0), (1.0, 3.0), (1.5, 2.5), (4.0, 0.0)]
    distance = crowding_distances(points)
    assert distance[0] == distance[3] == math.inf
    # Normalised gaps of the neighbours, summed over both objectives.
    assert distance[1] == pytest.approx((1.5 - 0.0) / 4 + (4.0 - 2.5) / 4)
    assert distance[2] == pytest.approx((4.0 - 1.0) / 4 + (3.0 - 0.0) / 4)
    assert crowding_distances([(1.0, 2.0)]) == [math.inf]


def test_hypervolume_is_the_area_of_the_staircase():
    # Points (score, cost) with the reference (score 0, cost 10): rectangles 2x8 + 1x5.
    assert hypervolume([2.0, 3.0], [2.0, 5.0], (0.0, 10.0)) == pytest.approx(2 * 8 + 1 * 5)
    # A dominated point and points beyond the reference add nothing.
    assert hypervolume([2.0, 3.0, 1.0, 5.0, -1.0], [2.0, 5.0, 6.0, 10.0, 1.0],
                       (0.0, 10.0)) == pytest.approx(21.0)
    assert hypervolume([], [], (0.0, 1.0)) == 0.0
