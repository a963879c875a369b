"""Search reports: the Table-2-style summary (JSON + markdown), terminal table, and plots.

Input is the search's ``results.jsonl`` records, one per candidate::

    {"arch": str, "params": int, "flops": int, "seconds": float,
     "scores": {estimator: {str(B): score}}, ...}

and ``truths``, arch text -> true accuracy (``None`` or absent = missing from the ground truth;
such candidates are listed and left out of every metric). Metrics follow
:mod:`estimators.metrics` (non-finite scores rank last, score ties go to the earlier candidate).
Plots are drawn on Agg canvases (no pyplot state) and written atomically as PNG.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_spaces.errors import SpeedyNASError
from supernet.atomic_io import atomic_write_json, atomic_write_text, atomic_writer

from .metrics import best_top_k, pair_with_truth, rank_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "format_markdown", "format_table", "log_figures", "plot_correlation_vs_budget", "plot_scores",
    "summarize", "write_summary",
]

#: At most this many missing archs are named in summary.md (summary.json lists all).
MAX_MISSING_SHOWN = 10


def _score(record: Mapping[str, Any], estimator: str, budget: int) -> float:
    """One score of a results record (``None``, e.g. JSON null, reads as NaN)."""
    per_budget = (record.get("scores") or {}).get(estimator) or {}
    key = str(budget) if str(budget) in per_budget else budget
    if key not in per_budget:
        raise SpeedyNASError(f"results record for {record.get('arch')} has no {estimator!r} "
                             f"score at B={budget}")
    value = per_budget[key]
    return math.nan if value is None else float(value)


def _scores(results: Sequence[Mapping[str, Any]], estimator: str, budget: int) -> list[float]:
    return [_score(r, estimator, budget) for r in results]


def summarize(results: Sequence[Mapping[str, Any]], truths: Mapping[str, float | None],
              estimators: Sequence[str], budgets: Sequence[int], settings: Mapping[str, Any],
              ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """A JSON-able summary: ``settings``, candidate counts, missing archs, ``best_possible``
    top-k means, and ``metrics[estimator][str(B)]`` = :func:`~estimators.metrics.rank_metrics`
    (n, spearman, kendall, top{k}, best_top{k})."""
    archs = [str(r["arch"]) for r in results]
    paired_truths = pair_with_truth(archs, [0.0] * len(archs), truths)
    metrics: dict[str, dict[str, Any]] = {}
    for estimator in estimators:
        metrics[estimator] = {}
        for budget in budgets:
            paired = pair_with_truth(archs, _scores(results, estimator, budget), truths)
            metrics[estimator][str(budget)] = rank_metrics(paired.scores, paired.truths, ks)
    return {
        "settings": dict(settings),
        "n_candidates": len(archs),
        "n_evaluated": len(paired_truths.archs),
        "n_missing": len(paired_truths.missing),
        "missing": paired_truths.missing,
        "estimators": list(estimators),
        "budgets": [int(b) for b in budgets],
        "ks": [int(k) for k in ks],
        "best_possible": {f"top{k}": best_top_k(paired_truths.truths, k) for k in ks},
        "metrics": metrics,
    }


def _table_k(summary: Mapping[str, Any]) -> int:
    """The k of the table's top-k column: 10 when computed, else the largest k."""
    ks = summary["ks"]
    return 10 if 10 in ks else max(ks)


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(summary: Mapping[str, Any]) -> str:
    """The estimator x budget table (Spearman, Kendall, top-k mean true accuracy per B) as an
    aligned markdown table, then ``best possible top-k: X``."""
    k = _table_k(summary)
    header = ["estimator"]
    for budget in summary["budgets"]:
        header += [f"Spearman B={budget}", f"Kendall B={budget}", f"top-{k} B={budget}"]
    rows = [header]
    for estimator in summary["estimators"]:
        row = [estimator]
        for budget in summary["budgets"]:
            m = summary["metrics"][estimator][str(budget)]
            row += [_fmt(m["spearman"], 3), _fmt(m["kendall"], 3), _fmt(m[f"top{k}"], 2)]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    lines = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(row) for row in rows[1:]]
    lines += ["", f"best possible top-{k}: {_fmt(summary['best_possible'][f'top{k}'], 2)}"]
    return "\n".join(lines)


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def format_markdown(summary: Mapping[str, Any]) -> str:
    """summary.md: the run's settings, candidate counts, then :func:`format_table`."""
    lines = ["# Search summary", "", "## Settings", ""]
    lines += [f"- {key}: {value}" for key, value in _flatten(summary["settings"])]
    lines += ["", f"- candidates: {summary['n_candidates']} (with ground truth: "
                  f"{summary['n_evaluated']}, missing: {summary['n_missing']})"]
    missing = summary["missing"]
    if missing:
        shown = ", ".join(f"`{a}`" for a in missing[:MAX_MISSING_SHOWN])
        more = f" and {len(missing) - MAX_MISSING_SHOWN} more (see summary.json)" \
            if len(missing) > MAX_MISSING_SHOWN else ""
        lines.append(f"- missing from ground truth: {shown}{more}")
    lines += ["", "## Ranking quality", "", format_table(summary), ""]
    if "retrain" in summary:
        lines += ["## Top-k retrained from scratch", "", format_retrain(summary["retrain"]), ""]
    return "\n".join(lines)


def format_retrain(retrain: Mapping[str, Any]) -> str:
    """Per estimator: mean measured test accuracy of its retrained top-k, beside the table's."""
    k, budget = retrain["top_k"], retrain["budget"]
    lines = [f"| estimator | top-{k} retrained test acc (B={budget}) | top-{k} table acc |",
             "|---|---|---|"]
    for name, row in retrain["estimators"].items():
        lines.append(f"| {name} | {_fmt(row['retrained_mean'], 2)} | {_fmt(row['table_mean'], 2)} |")
    settings = retrain["settings"]["retrain"]
    lines += ["", f"{len(retrain['archs'])} distinct archs retrained: {settings['epochs']} epochs, "
                  f"C={settings['C']}, resolution {settings['resolution']}, train images "
                  f"{settings['train_size'] or 'all'}, test images {settings['test_size'] or 'all'}."]
    return "\n".join(lines)


def write_summary(summary: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "summary.json", out_dir / "summary.md"
    atomic_write_json(json_path, summary)
    atomic_write_text(md_path, format_markdown(summary))
    return json_path, md_path


# --------------------------------------------------------------------------- plots

def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> None:
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png", dpi=100)


def plot_scores(results: Sequence[Mapping[str, Any]], truths: Mapping[str, float | None],
                estimators: Sequence[str], budget: int, path: str | Path) -> Figure:
    """A grid of scatter plots, one per estimator: score at ``budget`` vs true accuracy, titled
    with the Spearman correlation. Non-finite scores are counted in the title, not drawn."""
    archs = [str(r["arch"]) for r in results]
    ncols = min(3, max(1, len(estimators)))
    nrows = max(1, math.ceil(len(estimators) / ncols))
    fig = _figure(4.0 * ncols, 3.4 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, estimator in zip(axes, estimators):
        paired = pair_with_truth(archs, _scores(results, estimator, budget), truths)
        rho = rank_metrics(paired.scores, paired.truths, ks=())["spearman"]
        shown = [(s, t) for s, t in zip(paired.scores, paired.truths) if math.isfinite(s)]
        if shown:
            ax.scatter(*zip(*shown), s=12, alpha=0.7)
        dropped = len(paired.scores) - len(shown)
        note = f", {dropped} non-finite" if dropped else ""
        ax.set_title(f"{estimator} (B={budget}): Spearman {_fmt(rho, 2)}{note}", fontsize=9)
        ax.set_xlabel("score (larger = better)", fontsize=8)
        ax.set_ylabel("true accuracy", fontsize=8)
    for ax in axes[len(estimators):]:
        ax.set_visible(False)
    _save(fig, path)
    return fig


def plot_correlation_vs_budget(summary: Mapping[str, Any], path: str | Path) -> Figure:
    """Spearman correlation against budget B, one line per estimator."""
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    budgets = summary["budgets"]
    for estimator in summary["estimators"]:
        values = [summary["metrics"][estimator][str(b)]["spearman"] for b in budgets]
        ax.plot(budgets, [math.nan if v is None else v for v in values], marker="o",
                label=estimator)
    ax.set_xticks(budgets)
    ax.set_xlabel("budget B (fine-tune updates)")
    ax.set_ylabel("Spearman with true accuracy")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def log_figures(writer: Any, figures: Mapping[str, Figure], step: int = 0) -> None:
    """Log figures to a TensorBoard ``SummaryWriter`` under their tags."""
    for tag, fig in figures.items():
        writer.add_figure(tag, fig, global_step=step, close=False)
