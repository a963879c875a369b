"""Search plots, drawn on Agg canvases (no pyplot state) and written atomically as PNG: ranks
by score against ranks by truth, Pareto fronts per estimator, correlation against B; and the
TensorBoard hand-off of any figure."""
from __future__ import annotations

import bisect
import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .figures import legend_outside, line_styles, magnitude_axis, panel_grid, save_figure
from .metrics import pair_with_truth, rank_order
from .report import estimator_label, scores_at, with_interval
from .results_store import Record

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["log_figures", "plot_correlation_vs_budget", "plot_pareto", "plot_scores"]


def plot_scores(results: Sequence[Record], truths: Mapping[str, float | None],
                summary: Mapping[str, Any], budget: int, path: str | Path,
                marked: Collection[str] = ()) -> Figure:
    """A grid of rank-against-rank plots, one per estimator of ``summary``: each candidate's
    rank by score at ``budget`` (1 = best; non-finite scores last) against its rank by true
    accuracy, so a perfect estimator lies on the diagonal and the best archs sit bottom left
    whatever the accuracy scale. Candidates in ``marked`` (degenerate cells, say) are drawn as
    crosses. Titled with the summary's Spearman correlation and its bootstrap interval."""
    archs = [r.arch for r in results]
    estimators = summary["estimators"]
    fig, axes = panel_grid(len(estimators), 4.0, 3.6)
    for ax, estimator in zip(axes, estimators):
        paired = pair_with_truth(archs, scores_at(results, estimator, budget), truths)
        metric = summary["metrics"][estimator][str(budget)]
        score_rank = _positions(rank_order(paired.scores))
        true_rank = _positions(rank_order(paired.truths))
        is_marked = [a in marked for a in paired.archs]
        for flag, style in ((False, {"marker": "o", "s": 12, "alpha": 0.6}),
                            (True, {"marker": "x", "s": 18, "color": "tab:red",
                                    "label": "degenerate cell"})):
            points = [(score_rank[i], true_rank[i]) for i in range(len(paired.archs))
                      if is_marked[i] == flag]
            if points:
                ax.scatter(*zip(*points), **style)
        n = len(paired.archs)
        ax.plot([1, n], [1, n], color="0.6", linewidth=0.8)
        dropped = sum(not math.isfinite(s) for s in paired.scores)
        note = f", {dropped} non-finite (ranked last)" if dropped else ""
        ax.set_title(textwrap.fill(f"{estimator} (B={budget}): Spearman "
                                   f"{with_interval(metric, 'spearman')}{note}", 55), fontsize=8)
        ax.set_xlabel("rank by score (1 = best)", fontsize=8)
        ax.set_ylabel("rank by true accuracy (1 = best)", fontsize=8)
    if marked and any(a in marked for a in archs):
        handles, labels = axes[0].get_legend_handles_labels()
        legend_outside(fig, handles=handles[:1], labels=labels[:1])
    save_figure(fig, path)
    return fig


def _positions(order: Sequence[int]) -> list[int]:
    """Rank (1 = first) of each index, given the indices in rank order."""
    ranks = [0] * len(order)
    for position, index in enumerate(order, start=1):
        ranks[index] = position
    return ranks


def plot_pareto(results: Sequence[Record], pareto: Mapping[str, Any], cost: str,
                path: str | Path) -> Figure:
    """A grid of scatter plots, one per estimator: each candidate's rank by score at the
    front's budget (1 = best, at the top) against ``cost`` (:func:`magnitude_axis`), with its
    Pareto front (:func:`pareto_summary`) highlighted. Ranks keep the front and spread the
    points evenly whatever the scale of the scores (1e42, outliers). The estimator that is
    ``cost`` itself (a front of one point) gets no panel; the figure title says so."""
    from matplotlib.lines import Line2D

    fronts, budget = pareto["fronts"], pareto["budget"]
    shown = [e for e in fronts if e != cost]
    fig, axes = panel_grid(len(shown), 4.0, 3.4)
    costs = [float(getattr(r, cost)) for r in results]
    for ax, estimator in zip(axes, shown):
        _pareto_panel(ax, costs, scores_at(results, estimator, budget),
                      [(p[cost], p["score"]) for p in fronts[estimator][cost]])
        ax.set_title(f"{estimator} (B={budget}): front of {len(fronts[estimator][cost])}",
                     fontsize=9)
        magnitude_axis(ax, costs, cost)
    omitted = f"; {cost} is the cost itself: no panel" if cost in fronts else ""
    fig.suptitle(f"Pareto fronts of score against {cost}{omitted}", fontsize=10)
    legend_outside(fig, handles=[
        Line2D([], [], marker="o", linestyle="", color="grey", alpha=0.4, label="candidates"),
        Line2D([], [], marker="o", markersize=4, color="tab:red", label="Pareto front")])
    save_figure(fig, path)
    return fig


def _pareto_panel(ax: Axes, costs: Sequence[float], scores: Sequence[float],
                  front: Sequence[tuple[float, float]]) -> None:
    """Candidates with a finite score as (cost, rank by score), the ``front``'s (cost, score)
    points as a staircase; rank 1 (the best score; ties share a rank) at the top."""
    finite = sorted(s for s in scores if math.isfinite(s))
    shown = [(c, _rank(s, finite)) for c, s in zip(costs, scores) if math.isfinite(s)]
    if shown:
        ax.scatter(*zip(*shown), s=10, alpha=0.4, color="grey")
    if front:
        ax.plot([c for c, _ in front], [_rank(s, finite) for _, s in front], marker="o",
                markersize=4, color="tab:red", drawstyle="steps-post")
    _rank_axis(ax, len(finite))
    dropped = len(scores) - len(finite)
    note = f"; {dropped} non-finite not shown" if dropped else ""
    ax.set_ylabel(f"rank by score (1 = best){note}", fontsize=8)


def _rank_axis(ax: Axes, count: int) -> None:
    """A y axis of ranks 1 to ``count``, inverted (rank 1 at the top), with rank 1 labelled."""
    from matplotlib.ticker import MaxNLocator

    count = max(1, count)
    pad = 0.5 + 0.04 * (count - 1)  # markers at rank 1 and ``count`` stay whole
    ax.set_ylim(count + pad, 1 - pad)
    ticks = MaxNLocator(5, integer=True, steps=[1, 2, 5, 10]).tick_values(1, count)
    ax.set_yticks(sorted({1, *(int(t) for t in ticks if 1 < t <= count)}))


def _rank(score: float, ascending: Sequence[float]) -> int:
    """1 + the number of scores in ``ascending`` (sorted) better than ``score`` (equal
    scores, equal rank)."""
    return 1 + len(ascending) - bisect.bisect_right(ascending, score)


def plot_correlation_vs_budget(summary: Mapping[str, Any], path: str | Path) -> Figure:
    """Small multiples of Spearman correlation against budget B, one panel per estimator on
    the same y axis from -1 to 1 (no series squeezes another): the estimator's correlation
    with its bootstrap interval in its own style (:func:`line_styles`), over the other
    estimators' faint lines for comparison; the legend beside the panels."""
    names, budgets = summary["estimators"], summary["budgets"]
    styles = dict(zip(names, line_styles(len(names))))
    series = {e: _spearman_series(summary, e) for e in names}
    fig, axes = panel_grid(len(names), 3.0, 2.3, ncols=4)
    handles = []
    for ax, estimator in zip(axes, names):
        for other in names:
            if other != estimator:
                ax.errorbar(budgets, series[other][0], color=styles[other]["color"],
                            linestyle=styles[other]["linestyle"], linewidth=0.8, alpha=0.3)
        values, errors = series[estimator]
        handles.append(ax.errorbar(budgets, values, yerr=errors, capsize=2, markersize=4,
                                   linewidth=1.6, label=estimator_label(summary, estimator),
                                   **styles[estimator]))
        last = "n/a" if math.isnan(values[-1]) else f"{values[-1]:.2f}"
        ax.set_title(f"{estimator_label(summary, estimator)}: {last} at B={budgets[-1]}",
                     fontsize=9)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xticks(budgets)
        ax.tick_params(labelsize=8)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.grid(alpha=0.3)
    fig.supxlabel("budget B (fine-tune updates)", fontsize=9)
    fig.supylabel("Spearman with true accuracy (95 % interval)", fontsize=9)
    legend_outside(fig, handles=handles)
    save_figure(fig, path)
    return fig


def _spearman_series(summary: Mapping[str, Any],
                     estimator: str) -> tuple[list[float], list[list[float]]]:
    """An estimator's Spearman at each budget (NaN where undefined) and its interval as
    ``[below, above]`` error-bar lengths (zero where not computed, or where rounding puts the
    value just outside its interval: a fitness that is the truth has 0.9999999999999999 in
    [1.0, 1.0])."""
    metrics = [summary["metrics"][estimator][str(b)] for b in summary["budgets"]]
    values = [math.nan if m["spearman"] is None else m["spearman"] for m in metrics]
    errors = [[max(0.0, v - m["spearman_ci"][0]), max(0.0, m["spearman_ci"][1] - v)]
              if m.get("spearman_ci") else [0.0, 0.0] for v, m in zip(values, metrics)]
    return values, [list(side) for side in zip(*errors)]


def log_figures(writer: Any, figures: Mapping[str, Figure], step: int = 0) -> None:
    """Log figures to a TensorBoard ``SummaryWriter`` under their tags."""
    for tag, fig in figures.items():
        writer.add_figure(tag, fig, global_step=step, close=False)
