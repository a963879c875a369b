"""Search reports: the Table-2-style summary (JSON + markdown), terminal table and CSV
(the plots are :mod:`speedynas_search.plots`).

Input is the search's :class:`~speedynas_search.results_store.Record` list, one per
candidate, and ``truths``, arch text -> true accuracy (``None`` or absent = missing from the
ground truth; such candidates are listed and left out of every metric). Metrics follow
:mod:`speedynas_search.metrics` (non-finite scores rank last, score ties go to the earlier
candidate), except for *learned* estimators: their non-finite scores mark the candidates they
were fitted on, which are left out of their metrics (and marked ``*`` in the tables).
Pareto fronts (:func:`pareto_summary`): per estimator, the candidates that no other beats on
both score (larger) and parameter count, or FLOPs (smaller).
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import atomic_write_json, atomic_write_text

from .metrics import RESAMPLES, best_top_k, pair_with_truth, rank_metrics, rank_order
from .pareto import pareto_front
from .results_store import Record
from .strategy_report import format_strategy


__all__ = [
    "PARETO_COSTS", "best_ranked", "estimator_label", "fitted_archs", "format_best",
    "format_labels", "format_markdown", "format_table", "labels_summary", "pareto_summary",
    "scores_at", "scores_csv", "summarize", "with_interval", "write_summary",
]

#: The costs Pareto fronts minimise (keys of a results record).
PARETO_COSTS = ("params", "flops")

#: At most this many missing archs are named in summary.md (summary.json lists all).
MAX_MISSING_SHOWN = 10


def scores_at(results: Sequence[Record], estimator: str, budget: int) -> list[float]:
    """``estimator``'s score of each record at ``budget``."""
    return [r.score(estimator, budget) for r in results]


def summarize(results: Sequence[Record], truths: Mapping[str, float | None],
              estimators: Sequence[str], budgets: Sequence[int], settings: Mapping[str, Any],
              ks: Sequence[int] = (1, 5, 10), learned: Collection[str] = (),
              resamples: int = RESAMPLES, top_fraction: float = 0.1) -> dict[str, Any]:
    """A JSON-able summary: ``settings``, candidate counts, missing archs, ``best_possible``
    top-k means, and ``metrics[estimator][str(B)]`` = :func:`~speedynas_search.metrics.rank_metrics`
    (n, spearman and kendall with their bootstrap intervals from ``resamples`` resamples,
    kendall_top and precision_top at ``top_fraction``, top{k}, best_top{k}). The ``learned``
    estimators are evaluated only on the candidates they scored (finite scores);
    ``learned[name]["fitted"]`` counts the others at the largest B."""
    archs = [r.arch for r in results]
    paired_truths = pair_with_truth(archs, [0.0] * len(archs), truths)
    metrics: dict[str, dict[str, Any]] = {}
    fitted: dict[str, dict[str, int]] = {}
    for estimator in estimators:
        metrics[estimator] = {}
        for budget in budgets:
            scores = scores_at(results, estimator, budget)
            kept = [i for i, v in enumerate(scores)
                    if estimator not in learned or math.isfinite(v)]
            paired = pair_with_truth([archs[i] for i in kept], [scores[i] for i in kept], truths)
            metrics[estimator][str(budget)] = rank_metrics(
                paired.scores, paired.truths, ks, resamples=resamples, top_fraction=top_fraction)
            if estimator in learned and budget == max(budgets):
                fitted[estimator] = {"fitted": len(archs) - len(kept)}
    return {
        "settings": dict(settings),
        "n_candidates": len(archs),
        "n_evaluated": len(paired_truths.archs),
        "n_missing": len(paired_truths.missing),
        "missing": paired_truths.missing,
        "estimators": list(estimators),
        "budgets": [int(b) for b in budgets],
        "ks": [int(k) for k in ks],
        "resamples": int(resamples),
        "top_fraction": float(top_fraction),
        "best_possible": {f"top{k}": best_top_k(paired_truths.truths, k) for k in ks},
        "metrics": metrics,
        "learned": fitted,
        "nonfinite": {name: sum(not math.isfinite(v) for v in scores_at(results, name,
                                                                    max(budgets)))
                      for name in estimators if name not in learned},
    }


def fitted_archs(results: Sequence[Record], estimator: str, budgets: Sequence[int]) -> set[str]:
    """The archs learned ``estimator`` was fitted on: those of the candidates it left unscored
    (a non-finite score) at any of ``budgets``."""
    return {r.arch for r in results
            if any(not math.isfinite(r.score(estimator, b)) for b in budgets)}


def labels_summary(results: Sequence[Record], learned: Sequence[str], budgets: Sequence[int],
                   strategy_labels: int, strategy_source: str | None,
                   fitted_source: str | None) -> dict[str, Any]:
    """Every label the search used: the ``strategy_labels`` its strategy paid for (from
    ``strategy_source``, the labels section; table-lookup evaluations count one each) and the
    ground-truth values (``fitted_source``) of the distinct archs each ``learned`` estimator was
    fitted on, at any of ``budgets``. ``total`` counts an arch fitted on by several learned
    estimators once; ``fitted`` gives each estimator's own count."""
    fitted = {name: fitted_archs(results, name, budgets) for name in learned}
    distinct = set().union(*fitted.values())
    return {"total": strategy_labels + len(distinct), "strategy": strategy_labels,
            "strategy_source": strategy_source,
            "fitted": {name: len(archs) for name, archs in fitted.items()},
            "fitted_distinct": len(distinct),
            "fitted_source": fitted_source if fitted else None}


def format_labels(labels: Mapping[str, Any]) -> str:
    """One line: the labels used, split into the strategy's and the learned estimators' (their
    sources are the summary's ``labels`` and ``ground_truth`` settings)."""
    parts = [f"{labels['strategy']} paid for by the strategy"]
    if labels["fitted"]:
        each = ", ".join(f"{name}: {n}" for name, n in labels["fitted"].items())
        parts.append(f"{labels['fitted_distinct']} ground-truth labels learned estimators were "
                     f"fitted on ({each})")
    return f"labels used: {labels['total']} = " + " + ".join(parts)


def nonfinite_warnings(summary: Mapping[str, Any]) -> list[str]:
    """One warning per estimator with NaN or infinite scores at the largest B (a diverged
    fine-tune, for example): their candidates rank last and top-k needs k finite scores."""
    last, total = max(summary["budgets"]), summary["n_candidates"]
    return [f"warning: {name} gave {count} of {total} candidates a non-finite score at B={last} "
            "(a diverging fine-tune? try a lower finetune.lr; or a zero-cost proxy undefined "
            "for the arch, such as jacov of a disconnected cell); they rank last"
            for name, count in summary.get("nonfinite", {}).items() if count]


def _table_k(summary: Mapping[str, Any]) -> int:
    """The k of the table's top-k column: 10 when computed, else the largest k."""
    ks = summary["ks"]
    return 10 if 10 in ks else max(ks)


def format_number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``n/a`` for ``None``."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def value_with_interval(value: float | None, interval: Sequence[float] | None, digits: int,
                        interval_digits: int | None = None) -> str:
    """``93.44 [93.30, 93.60]``: ``value`` (``digits`` decimals) and its interval
    (``interval_digits`` decimals, ``digits`` by default), or the value alone without one."""
    text = format_number(value, digits)
    if interval is None:
        return text
    places = digits if interval_digits is None else interval_digits
    return f"{text} [{interval[0]:.{places}f}, {interval[1]:.{places}f}]"


def with_interval(metric: Mapping[str, Any], kind: str, digits: int = 3) -> str:
    """``0.712 [0.64, 0.77]``: a correlation (``digits`` decimals) and its bootstrap interval
    (when computed)."""
    return value_with_interval(metric[kind], metric.get(f"{kind}_ci"), digits, 2)


def estimator_label(summary: Mapping[str, Any], estimator: str) -> str:
    learned = summary.get("learned") or {}
    return (f"{estimator} *" if estimator in learned else
            f"{estimator} [table lookup]" if estimator in summary.get("lookups", ()) else
            estimator)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """An aligned markdown table."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(row) for row in rows)]


def format_table(summary: Mapping[str, Any]) -> str:
    """The estimator x budget table (Spearman and Kendall with their bootstrap 95 % intervals,
    top-k mean true accuracy per B) as an aligned markdown table, then ``best possible top-k``,
    then the top of the ranking (Kendall among, and precision at, the true top fraction)."""
    k = _table_k(summary)
    header, top_header = ["estimator"], ["estimator"]
    share = f"{100 * summary.get('top_fraction', 0.1):g} %"
    for budget in summary["budgets"]:
        header += [f"Spearman B={budget}", f"Kendall B={budget}", f"top-{k} B={budget}"]
        top_header += [f"Kendall in top {share} B={budget}", f"precision@{share} B={budget}"]
    rows, top_rows = [], []
    for estimator in summary["estimators"]:
        row, top_row = [estimator_label(summary, estimator)], [estimator]
        for budget in summary["budgets"]:
            m = summary["metrics"][estimator][str(budget)]
            row += [with_interval(m, "spearman"), with_interval(m, "kendall"),
                    format_number(m[f"top{k}"], 2)]
            top_row += [format_number(m.get("kendall_top"), 3),
                        format_number(m.get("precision_top"), 2)]
        rows.append(row)
        top_rows.append(top_row)
    lines = _markdown_table(header, rows)
    lines += ["", f"best possible top-{k}: {format_number(summary['best_possible'][f'top{k}'], 2)}"]
    if summary.get("resamples"):
        lines.append(f"[low, high]: bootstrap 95 % interval over the candidates "
                     f"({summary['resamples']} resamples)")
    for estimator, info in (summary.get("learned") or {}).items():
        lines.append(f"* {estimator}: learned from ground truth; the {info['fitted']} candidates "
                     "it was fitted on are not scored, its metrics use the others only")
    lines += ["", f"Top of the ranking (the {share} of the candidates with the best truths):",
              "", *_markdown_table(top_header, top_rows)]
    return "\n".join(lines)


def best_ranked(results: Sequence[Record], truths: Mapping[str, float | None],
                estimator: str, budget: int,
                space_values: Sequence[float] | None = None) -> dict[str, Any] | None:
    """The candidate ``estimator`` ranks first at ``budget`` (see
    :func:`~speedynas_search.metrics.rank_order`), with its true accuracy, its rank by truth
    among the candidates with ground truth (1 = best; ties share the better rank) and, given
    every known value of the search space (``space_values``), its rank in the whole space.
    ``None`` when no candidate has a finite score."""
    scores = scores_at(results, estimator, budget)
    order = rank_order(scores)
    if not order or not math.isfinite(scores[order[0]]):
        return None
    arch = results[order[0]].arch
    truth = truths.get(arch)
    best: dict[str, Any] = {"estimator": estimator, "budget": int(budget), "arch": arch,
                            "score": scores[order[0]], "truth": truth}
    if truth is None:
        return best
    known = [t for t in (truths.get(r.arch) for r in results) if t is not None]
    best["rank"], best["of"] = 1 + sum(t > truth for t in known), len(known)
    if space_values is not None:
        space = [float(v) for v in space_values if math.isfinite(v)]
        best["space_rank"], best["space_size"] = 1 + sum(v > truth for v in space), len(space)
    return best


def format_best(best: Mapping[str, Any] | None) -> str:
    """Two lines on :func:`best_ranked`'s candidate: the arch, then its true accuracy and ranks."""
    if best is None:
        return "best-ranked arch: none (no finite score)"
    line = (f"best-ranked by {best['estimator']} (B={best['budget']}): {best['arch']}\n"
            f"  true accuracy {format_number(best['truth'], 2)}")
    if best["truth"] is None:
        return line + " (no ground truth for it: see --ground-truth)"
    line += f": rank {best['rank']} of {best['of']} candidates"
    if "space_rank" in best:
        share = 100.0 * best["space_rank"] / best["space_size"]
        line += (f", rank {best['space_rank']:,} of {best['space_size']:,} in the search space "
                 f"(top {share:.1f} %)")
    return line


def pareto_summary(results: Sequence[Record], estimators: Sequence[str],
                   budget: int, costs: Sequence[str] = PARETO_COSTS) -> dict[str, Any]:
    """``{"budget": B, "fronts": {estimator: {cost: [{arch, score, params, flops}, ...]}}}``:
    for each of ``costs`` (a subset of :data:`PARETO_COSTS`), the candidates non-dominated in
    (score at ``budget``, cost), by increasing cost (see :mod:`speedynas_search.pareto`)."""
    fronts: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for estimator in estimators:
        scores = scores_at(results, estimator, budget)
        fronts[estimator] = {
            cost: [{"arch": results[i].arch, "score": scores[i],
                    **{c: int(getattr(results[i], c)) for c in costs}}
                   for i in pareto_front(scores, [float(getattr(r, cost)) for r in results])]
            for cost in costs}
    return {"budget": int(budget), "fronts": fronts}


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell (NB201 arch strings contain ``|``)."""
    return text.replace("|", "\\|")


def format_pareto(pareto: Mapping[str, Any]) -> str:
    """Per estimator, the size of each Pareto front and its cheapest and best-scoring ends."""
    lines = [f"| estimator (B={pareto['budget']}) | cost | front size | cheapest | best score |",
             "|---|---|---|---|---|"]
    for estimator, fronts in pareto["fronts"].items():
        for cost, front in fronts.items():
            ends = [f"`{_cell(p['arch'])}` ({cost} {p[cost]:,}, score {p['score']:.4g})"
                    for p in (front[0], front[-1])] if front else ["n/a", "n/a"]
            lines.append(f"| {estimator} | {cost} | {len(front)} | {ends[0]} | {ends[1]} |")
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
    if "best" in summary:
        lines += [format_best(summary["best"]).replace("\n  ", "; "), ""]
    if "strategy" in summary:
        lines += ["## Strategy", "", "```", format_strategy(summary["strategy"]), "```", ""]
    if summary.get("labels", {}).get("total"):
        lines += ["## Labels used", "", format_labels(summary["labels"]), ""]
    if "retrain" in summary:
        lines += ["## Top-k retrained from scratch", "", format_retrain(summary["retrain"]), ""]
    if "pareto" in summary:
        lines += ["## Pareto fronts (score vs size)", "",
                  "Non-dominated candidates: no other has a higher score and a smaller size; "
                  "the full fronts are in summary.json.", "", format_pareto(summary["pareto"]), ""]
    return "\n".join(lines)


def format_retrain(retrain: Mapping[str, Any]) -> str:
    """Per estimator: mean measured test accuracy of its retrained top-k, beside the table's."""
    k, budget = retrain["top_k"], retrain["budget"]
    lines = [f"| estimator | top-{k} retrained test acc (B={budget}) | top-{k} table acc |",
             "|---|---|---|"]
    for name, row in retrain["estimators"].items():
        lines.append(f"| {name} | {format_number(row['retrained_mean'])} | "
                     f"{format_number(row['table_mean'])} |")
    settings = retrain["settings"]["retrain"]
    lines += ["", f"{len(retrain['archs'])} distinct archs retrained: {settings['epochs']} epochs, "
                  f"C={settings['C']}, resolution {settings['resolution']}, train images "
                  f"{settings['train_size'] or 'all'}, test images {settings['test_size'] or 'all'}."]
    return "\n".join(lines)


def scores_csv(results: Sequence[Record], truths: Mapping[str, float | None],
               estimators: Sequence[str], budgets: Sequence[int]) -> str:
    """Per-candidate scores as CSV text, one row per candidate in evaluation order: ``arch``,
    ``params``, ``flops``, ``truth`` (empty when unknown), then one ``<estimator>@B<budget>``
    column per estimator and budget (empty for a non-finite score); no trajectories."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["arch", "params", "flops", "truth",
                     *(f"{e}@B{b}" for e in estimators for b in budgets)])
    for record in results:
        scores = [record.score(e, b) for e in estimators for b in budgets]
        writer.writerow([record.arch, record.params, "" if record.flops is None else record.flops,
                         _csv_number(truths.get(record.arch)), *(_csv_number(v) for v in scores)])
    return out.getvalue()


def _csv_number(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def write_summary(summary: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "summary.json", out_dir / "summary.md"
    atomic_write_json(json_path, summary)
    atomic_write_text(md_path, format_markdown(summary))
    return json_path, md_path
