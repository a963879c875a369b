"""What a strategy found: the incumbent after every batch, what it cost, and (multi-objective)
the front it found beside the true one.

The incumbent trace goes to ``incumbent.csv`` and ``incumbent.png`` (true accuracy, or the
fitness when there is no ground truth, against fine-tune steps and against seconds). A
multi-objective search also writes ``front_<cost>.png``: its front (non-dominated in fitness
and cost), placed at the archs' true accuracies, beside the true front among the archs it
evaluated and, when the ground truth knows the whole space, the space's true front. Coverage is
the hypervolume of the found front's true points over that of the true front, both measured
from the reference point (median true accuracy, largest cost) of the evaluated archs, so that
the measure looks at the better half; ``*_from_worst`` measures from (lowest true accuracy,
largest cost) instead, which counts the poor archs' end of the front too.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speedynas_core.atomic_io import atomic_write_text

from .figures import legend_outside, new_figure, save_figure
from search_spaces.ground_truth import GroundTruth
from .pareto import hypervolume, pareto_front
from .results_store import Record
from .search_config import LimitConfig
from .strategies import Fidelity, Strategy

if TYPE_CHECKING:
    from .evaluation_runner import EvaluationRun

#: Columns of ``incumbent.csv``.
TRACE_COLUMNS = ("evaluations", "steps", "seconds", "fitness", "budget", "index", "arch",
                 "score", "truth", "space_rank")


def strategy_summary(strategy: Strategy, fidelities: Sequence[Fidelity], limit: LimitConfig,
                     run: EvaluationRun, results: Sequence[Record],
                     truths: Mapping[str, float | None], truth: GroundTruth | None,
                     lookups: Sequence[str]) -> dict[str, Any]:
    """The ``strategy`` section of the summary of ``run``, whose final fidelity's records are
    ``results``."""
    wall, evaluating = run.wall_seconds, run.evaluation_seconds
    # The strategy's own time this run (selection, mutation, bookkeeping, replaying recorded
    # evaluations) over the search's wall time: that and every evaluation's recorded seconds.
    overhead = max(0.0, wall - evaluating)
    total = overhead + run.spent.seconds
    trace = list(run.trace)
    summary: dict[str, Any] = {
        "name": strategy.name, "describe": strategy.describe(),
        "fidelities": [f._asdict() for f in fidelities],
        "fitness_is_table_lookup": any(f.fitness in lookups for f in fidelities),
        "limit": {k: getattr(limit, k) for k in ("evaluations", "steps", "seconds")},
        "spent": dataclasses.asdict(run.spent),
        "run_wall_seconds": wall, "run_evaluation_seconds": evaluating,
        "overhead_seconds": overhead,
        "overhead_fraction": overhead / total if total > 0 else None,
        "incumbent": trace[-1] if trace else None, "trace": trace,
    }
    if strategy.objectives:
        final = fidelities[-1]
        summary["fronts"] = {cost: front_summary(results, truths, final, cost, truth)
                             for cost in strategy.objectives}
    return summary


def front_summary(results: Sequence[Record], truths: Mapping[str, float | None],
                  fidelity: Fidelity, cost: str, truth: GroundTruth | None) -> dict[str, Any]:
    """The found front in (fitness, ``cost``) and how much of the true front it covers."""
    known = [r for r in results if truths.get(r.arch) is not None]
    scores = [r.score(fidelity.fitness, fidelity.budget) for r in known]
    costs = [float(getattr(r, cost)) for r in known]
    true = [float(truths[r.arch]) for r in known]
    found = pareto_front(scores, costs)
    best = pareto_front(true, costs)
    out: dict[str, Any] = {
        "found": [_point(known[i], scores[i], true[i], cost) for i in found],
        "true_among_evaluated": [_point(known[i], scores[i], true[i], cost) for i in best]}
    if not known:
        return out
    space = truth.space_points(cost) if truth is not None else None
    for name, accuracy in (("", float(np.median(true))), ("_from_worst", min(true))):
        reference = (accuracy, max(costs))
        found_hv = hypervolume([true[i] for i in found], [costs[i] for i in found], reference)
        true_hv = hypervolume(true, costs, reference)
        out.update({f"reference{name}": list(reference),
                    f"coverage_of_evaluated{name}": found_hv / true_hv if true_hv > 0 else None})
        if space is not None:
            space_hv = hypervolume(space[0], space[1], reference)
            out[f"coverage_of_space{name}"] = found_hv / space_hv if space_hv > 0 else None
    if space is not None:
        front = pareto_front(list(space[0]), list(space[1]))
        out["space_front"] = [{"truth": space[0][i], cost: space[1][i]} for i in front]
    return out


def _point(record: Record, score: float, truth: float, cost: str) -> dict[str, Any]:
    return {"arch": record.arch, "score": score, "truth": truth, cost: getattr(record, cost)}


def format_strategy(summary: Mapping[str, Any]) -> str:
    """A few lines: the strategy, what it spent, its incumbent, its fronts' coverage."""
    spent, inc = summary["spent"], summary["incumbent"] or {}
    lookup = " [table lookup, not an estimate]" if summary["fitness_is_table_lookup"] else ""
    lines = [f"strategy: {summary['describe']}; fitness {inc.get('fitness')} at "
             f"B={inc.get('budget')}{lookup}",
             f"  spent {spent['evaluations']} evaluations, {spent['steps']:,} fine-tune steps, "
             f"{spent['seconds']:.1f} s of evaluation; strategy overhead "
             + (f"{100 * summary['overhead_fraction']:.2f} % of the search's wall time"
                if summary["overhead_fraction"] is not None else "n/a")]
    if "arch" in inc:
        line = f"  incumbent {inc['arch']} (score {inc['score']:.4g})"
        if "truth" in inc:
            line += f": true accuracy {inc['truth']:.2f}"
            if "space_rank" in inc:
                line += f", rank {inc['space_rank']:,} in the space"
        lines.append(line)
    for cost, front in (summary.get("fronts") or {}).items():
        if front.get("coverage_of_evaluated") is not None:
            line = (f"  front vs {cost}: {len(front['found'])} archs, "
                    f"{100 * front['coverage_of_evaluated']:.1f} % of the true front's "
                    "hypervolume among the evaluated archs")
            if front.get("coverage_of_space") is not None:
                line += f", {100 * front['coverage_of_space']:.1f} % of the whole space's"
            lines.append(line + f" (from the median accuracy; from the worst: "
                                f"{100 * front['coverage_of_evaluated_from_worst']:.1f} %)")
    return "\n".join(lines)


def write_strategy_outputs(summary: Mapping[str, Any], out_dir: Path) -> None:
    """``incumbent.csv``, ``incumbent.png`` and ``front_<cost>.png``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TRACE_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary["trace"])
    atomic_write_text(out_dir / "incumbent.csv", buffer.getvalue())
    plot_incumbent(summary, out_dir / "incumbent.png")
    for cost, front in (summary.get("fronts") or {}).items():
        plot_front(front, cost, summary["describe"], out_dir / f"front_{cost}.png")


def plot_incumbent(summary: Mapping[str, Any], path: Path) -> None:
    """The incumbent's true accuracy (or fitness) against fine-tune steps and seconds."""
    trace = [t for t in summary["trace"] if "arch" in t]
    has_truth = bool(trace) and all("truth" in t for t in trace)
    key = "truth" if has_truth else "score"
    fig = new_figure(10, 3.8)
    for ax, x in zip(fig.subplots(1, 2), ("steps", "seconds")):
        ax.step([t[x] for t in trace], [t[key] for t in trace], where="post", marker=".")
        ax.set_xlabel("fine-tune steps spent" if x == "steps" else "evaluation seconds spent")
        ax.set_ylabel("incumbent's true accuracy (%)" if has_truth else "incumbent's fitness")
        ax.grid(alpha=0.3)
    fig.suptitle(textwrap.fill(summary["describe"] + (
        " [fitness: table lookup]" if summary["fitness_is_table_lookup"] else ""), 120),
        fontsize=10)
    save_figure(fig, path)


def plot_front(front: Mapping[str, Any], cost: str, title: str, path: Path) -> None:
    """The found front at its true accuracies, the true fronts, against ``cost``."""
    fig = new_figure(8.5, 4.5)
    ax = fig.subplots()
    if front.get("space_front"):
        points = front["space_front"]
        ax.step([p[cost] for p in points], [p["truth"] for p in points], where="post",
                color="0.6", label="true front of the whole space")
    for key, style, label in (("true_among_evaluated", "s--", "true front among evaluated"),
                              ("found", "o-", "front found (by fitness)")):
        points = front[key]
        ax.step([p[cost] for p in points], [p["truth"] for p in points], style, where="post",
                label=label, markersize=4)
    ax.set_xlabel(cost)
    ax.set_ylabel("true accuracy (%)")
    coverage = front.get("coverage_of_evaluated")
    ax.set_title(textwrap.fill(title, 80) + (
        f"\nfound front: {100 * coverage:.1f} % of the hypervolume of the true front among "
        "the evaluated archs" if coverage is not None else ""), fontsize=8)
    ax.grid(alpha=0.3)
    legend_outside(fig)
    save_figure(fig, path)
