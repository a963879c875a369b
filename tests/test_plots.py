"""The search plots read at a glance whatever the scale of the scores: no trivial panel,
labelled ticks on the cost axis, outliers that squeeze nothing, one correlation panel per
estimator on the full [-1, 1] range."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speedynas_search import pareto_summary, plot_correlation_vs_budget, plot_pareto
from speedynas_search.results_store import Record

N = 30
BUDGET = 4


def _results(params: list[float]) -> list[Record]:
    """Candidates with a cost estimator (``params``), an outlier-ridden zero-cost-like score
    (synflow: around 1e42 with one huge value; a NaN) and a plain score (tse)."""
    rng = np.random.default_rng(0)
    results = []
    for i, cost in enumerate(params):
        synflow = math.nan if i == 3 else 1e42 * (1 + i / N) * (1e6 if i == 7 else 1)
        results.append(Record(index=i, arch=f"arch{i}", steps=BUDGET, params=int(cost),
                              flops=int(cost) * 300, seconds=0.0, trajectory={},
                              scores={"params": {str(BUDGET): float(cost)},
                                      "synflow": {str(BUDGET): synflow},
                                      "tse": {str(BUDGET): float(rng.normal())}}))
    return results


def _panels(fig: Any) -> dict[str, Any]:
    """Visible axes by the estimator named first in their title."""
    return {ax.get_title().split(" ")[0].rstrip(":"): ax for ax in fig.axes if ax.get_visible()}


def _labelled_xticks(ax: Any) -> list[str]:
    """The non-empty labels of the major x ticks inside the axis's view, as drawn."""
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_xlim())
    locs = [x for x in ax.xaxis.get_majorticklocs() if low <= x <= high]
    return [t for t in ax.xaxis.get_major_formatter().format_ticks(locs) if t]


def _pareto(tmp_path: Path, params: list[float]) -> tuple[list[dict[str, Any]], Any, Any]:
    results = _results(params)
    pareto = pareto_summary(results, ["params", "synflow", "tse"], BUDGET, ["params", "flops"])
    return results, pareto, plot_pareto(results, pareto, "params", tmp_path / "pareto.png")


def test_pareto_has_no_panel_for_the_cost_itself(tmp_path: Path) -> None:
    results, pareto, fig = _pareto(tmp_path, [100_000 + 1_000 * i for i in range(N)])
    assert set(_panels(fig)) == {"synflow", "tse"}
    assert "params is the cost itself" in fig.get_suptitle()
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    flops = plot_pareto(results, pareto, "flops", tmp_path / "flops.png")
    assert set(_panels(flops)) == {"params", "synflow", "tse"}
    assert "cost itself" not in flops.get_suptitle()


@pytest.mark.parametrize("span", [1.5, 4.0, 30.0, 1000.0])
def test_cost_axis_has_labelled_ticks_whatever_its_span(tmp_path: Path, span: float) -> None:
    _, _, fig = _pareto(tmp_path, list(np.geomspace(2e5, 2e5 * span, N)))
    for ax in _panels(fig).values():
        assert len(_labelled_xticks(ax)) >= 2
        assert (ax.get_xscale() == "log") == (span >= 10)
        assert ("log scale" in ax.get_xlabel()) == (span >= 10)


def test_outlying_scores_do_not_squeeze_the_others(tmp_path: Path) -> None:
    _, _, fig = _pareto(tmp_path, [100_000 + 1_000 * i for i in range(N)])
    ax = _panels(fig)["synflow"]
    heights = np.asarray(ax.collections[0].get_offsets())[:, 1]
    assert len(heights) == N - 1  # the NaN is left out, and the label says so
    assert "1 non-finite" in ax.get_ylabel()
    low, high = sorted(ax.get_ylim())
    assert low <= heights.min() and heights.max() <= high
    middle = np.percentile(heights, 90) - np.percentile(heights, 10)
    assert middle >= 0.6 * (high - low)  # the middle 80 % of points fill most of the axis


def test_pareto_staircase_is_the_front_best_at_the_top(tmp_path: Path) -> None:
    results, pareto, fig = _pareto(tmp_path, [100_000 + 1_000 * ((7 * i) % N) for i in range(N)])
    for estimator, ax in _panels(fig).items():
        front = pareto["fronts"][estimator]["params"]
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == [p["params"] for p in front]
        ranks = list(line.get_ydata())
        assert ranks[-1] == 1 and ranks == sorted(ranks, reverse=True)  # better as cost grows
        bottom, top = ax.get_ylim()
        assert bottom > top  # inverted: rank 1 drawn at the top


def _summary(spearman: dict[str, list[float]]) -> dict[str, Any]:
    """A summary at B = 2, 4 with intervals of +-0.1 around the given correlations."""
    budgets = [2, 4]
    return {"estimators": list(spearman), "budgets": budgets,
            "metrics": {e: {str(b): {"spearman": v, "spearman_ci": [v - 0.1, v + 0.1]}
                            for b, v in zip(budgets, values)}
                        for e, values in spearman.items()}}


def test_correlation_panels_share_the_full_range(tmp_path: Path) -> None:
    spearman = {"tse": [0.70, 0.75], "sovl": [0.72, 0.74], "valacc": [0.71, 0.76],
                "jacov": [-0.85, -0.80], "snip": [0.3, 0.35]}
    fig = plot_correlation_vs_budget(_summary(spearman), tmp_path / "corr.png")
    panels = _panels(fig)
    assert list(panels) == list(spearman)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(spearman)
    for name, ax in panels.items():
        low, high = ax.get_ylim()
        assert low <= -1.0 and high >= 1.0  # a negative series stretches no other panel
        own = ax.containers[-1]  # drawn last, over the other estimators' faint lines
        assert list(own.lines[0].get_ydata()) == spearman[name]
        (bars,) = own.lines[2]
        spans = [[seg[0][1], seg[1][1]] for seg in bars.get_segments()]
        assert np.allclose(spans, [[v - 0.1, v + 0.1] for v in spearman[name]])
        assert f"{spearman[name][-1]:.2f} at B=4" in ax.get_title()
