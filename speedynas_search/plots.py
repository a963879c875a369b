"""Search plots, drawn on Agg canvases (no pyplot state) and written atomically as PNG: ranks
by score against ranks by truth, Pareto fronts per estimator, correlation against B; and the
TensorBoard hand-off of any figure."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .figures import legend_outside, line_styles, new_figure, save_figure
from .metrics import pair_with_truth, rank_order
from .report import estimator_label, scores_at, with_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["log_figures", "plot_correlation_vs_budget", "plot_pareto", "plot_scores"]


def plot_scores(results: Sequence[Mapping[str, Any]], truths: Mapping[str, float | None],
                summary: Mapping[str, Any], budget: int, path: str | Path,
                marked: Collection[str] = ()) -> Figure:
    """A grid of rank-against-rank plots, one per estimator of ``summary``: each candidate's
    rank by score at ``budget`` (1 = best; non-finite scores last) against its rank by true
    accuracy, so a perfect estimator lies on the diagonal and the best archs sit bottom left
    whatever the accuracy scale. Candidates in ``marked`` (degenerate cells, say) are drawn as
    crosses. Titled with the summary's Spearman correlation and its bootstrap interval."""
    archs = [str(r["arch"]) for r in results]
    estimators = summary["estimators"]
    ncols = min(3, max(1, len(estimators)))
    nrows = max(1, math.ceil(len(estimators) / ncols))
    fig = new_figure(4.0 * ncols, 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
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
    for ax in axes[len(estimators):]:
        ax.set_visible(False)
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


def plot_pareto(results: Sequence[Mapping[str, Any]], pareto: Mapping[str, Any], cost: str,
                path: str | Path) -> Figure:
    """A grid of scatter plots, one per estimator: score vs ``cost`` (log scale) of every
    candidate, with its Pareto front (:func:`pareto_summary`) highlighted."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    fronts, budget = pareto["fronts"], pareto["budget"]
    ncols = min(3, max(1, len(fronts)))
    nrows = max(1, math.ceil(len(fronts) / ncols))
    fig = new_figure(4.0 * ncols, 3.4 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (estimator, front) in zip(axes, fronts.items()):
        shown = [(float(r[cost]), s) for r, s in zip(results, scores_at(results, estimator, budget))
                 if math.isfinite(s)]
        if shown:
            ax.scatter(*zip(*shown), s=10, alpha=0.4, color="grey", label="candidates")
        points = [(p[cost], p["score"]) for p in front[cost]]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=4, color="tab:red",
                    drawstyle="steps-post")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels overlap
        ax.set_title(f"{estimator} (B={budget}): front of {len(points)}", fontsize=9)
        ax.set_xlabel(cost, fontsize=8)
        ax.set_ylabel("score (larger = better)", fontsize=8)
    for ax in axes[len(fronts):]:
        ax.set_visible(False)
    legend_outside(fig, handles=[
        Line2D([], [], marker="o", linestyle="", color="grey", alpha=0.4, label="candidates"),
        Line2D([], [], marker="o", markersize=4, color="tab:red", label="Pareto front")])
    save_figure(fig, path)
    return fig


def plot_correlation_vs_budget(summary: Mapping[str, Any], path: str | Path) -> Figure:
    """Spearman correlation against budget B with its bootstrap interval, one style per
    estimator (:func:`~speedynas_search.figures.line_styles`), the legend beside the axes."""
    names = summary["estimators"]
    fig = new_figure(7.5, 4.0)
    ax = fig.subplots()
    budgets = summary["budgets"]
    spread = 0.01 * (max(budgets) - min(budgets) or 1)  # intervals side by side, not on top
    for i, (estimator, style) in enumerate(zip(names, line_styles(len(names)))):
        metrics = [summary["metrics"][estimator][str(b)] for b in budgets]
        values = [math.nan if m["spearman"] is None else m["spearman"] for m in metrics]
        xs = [b + (i - (len(names) - 1) / 2) * spread for b in budgets]
        errors = [[v - m["spearman_ci"][0], m["spearman_ci"][1] - v]
                  if m.get("spearman_ci") else [0.0, 0.0] for v, m in zip(values, metrics)]
        ax.errorbar(xs, values, yerr=list(zip(*errors)), capsize=2, markersize=4,
                    label=estimator_label(summary, estimator), **style)
    ax.set_xticks(budgets)
    ax.set_xlabel("budget B (fine-tune updates)")
    ax.set_ylabel("Spearman with true accuracy (95 % interval)")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.grid(alpha=0.3)
    legend_outside(fig)
    save_figure(fig, path)
    return fig


def log_figures(writer: Any, figures: Mapping[str, Figure], step: int = 0) -> None:
    """Log figures to a TensorBoard ``SummaryWriter`` under their tags."""
    for tag, fig in figures.items():
        writer.add_figure(tag, fig, global_step=step, close=False)
