"""What a strategy found: the incumbent after every batch, what it cost, and (multi-objective)
the front it found beside the true one.

The incumbent trace goes to ``incumbent.csv`` and ``incumbent.png`` (true accuracy, or the
fitness when there is no ground truth, against fine-tune steps and against seconds). A
multi-objective search also writes ``front_<objective>.png`` for each objective
(:mod:`search_spaces.objectives`: a measured cost or a table column, minimised or maximised):
its front (non-dominated in fitness and objective), placed at the archs' true accuracies,
beside the true front among the archs it evaluated and, when the ground truth knows the whole
space, the space's true front. Coverage is the hypervolume of the found front's true points
over that of the true front, both measured from the reference point (median true accuracy,
worst objective value) of the evaluated archs, so that the measure looks at the better half;
``*_from_worst`` measures from (lowest true accuracy, worst value) instead, which counts the
poor archs' end of the front too. A search that pays for labels (``guided``) finds its front
among its labelled archs by their labels, and by the labelled values of an objective paid with
them (a paid objective, :mod:`speedynas_search.labels`); the true fronts use the truth and the
objective's table column.

Against the whole space's true front (every arch the ground truth knows), the reference point
is the space's own (median true accuracy, worst value), the same for every search:
``hypervolume_fraction`` (and ``_from_worst``). The front's points that beat that reference
(``space_front_counted``) are reached when a found arch is at least as good on both (the same
values), within ``epsilon`` when at most :data:`EPSILON` of those points' span worse on each.
"""
from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speedynas_core.atomic_io import atomic_write_csv

from .figures import legend_outside, new_figure, save_figure
from search_spaces import SearchSpace
from search_spaces.ground_truth import GroundTruth
from search_spaces.objectives import MEASURED, table_objective
from .pareto import hypervolume, pareto_front, reached
from .results_store import Record
from .search_config import LimitConfig
from .strategies import Fidelity, Strategy

if TYPE_CHECKING:
    from .evaluation_runner import EvaluationRun

#: Columns of ``incumbent.csv``.
TRACE_COLUMNS = ("evaluations", "steps", "seconds", "fitness", "budget", "index", "arch",
                 "score", "truth", "space_rank")
#: Tolerance of ``space_front_within_epsilon``: this fraction of the counted true front's span
#: in each objective.
EPSILON = 0.05


def strategy_summary(strategy: Strategy, fidelities: Sequence[Fidelity], limit: LimitConfig,
                     run: EvaluationRun, results: Sequence[Record],
                     truths: Mapping[str, float | None], truth: GroundTruth | None,
                     lookups: Sequence[str]) -> dict[str, Any]:
    """The ``strategy`` section of the summary of ``run``, whose final fidelity's records are
    ``results``."""
    wall, evaluating = run.wall_seconds, run.evaluation_seconds
    # The strategy's own time this run (selection, mutation, bookkeeping, replaying recorded
    # evaluations) over the search's wall time: that, every evaluation's recorded seconds and
    # this run's time getting labels (a training each, with labels.source=standalone).
    overhead = max(0.0, wall - evaluating - run.label_seconds)
    total = overhead + run.spent.seconds + run.label_seconds
    trace = list(run.trace)
    summary: dict[str, Any] = {
        "name": strategy.name, "describe": strategy.describe(),
        "fidelities": [f._asdict() for f in fidelities],
        "fitness_is_table_lookup": any(f.fitness in lookups for f in fidelities),
        "limit": {k: getattr(limit, k) for k in ("evaluations", "steps", "seconds")},
        "spent": dataclasses.asdict(run.spent),
        "run_wall_seconds": wall, "run_evaluation_seconds": evaluating,
        "run_label_seconds": run.label_seconds, "overhead_seconds": overhead,
        "overhead_fraction": overhead / total if total > 0 else None,
        "incumbent": trace[-1] if trace else None, "trace": trace,
    }
    if strategy.objectives:
        final = fidelities[-1]
        summary["fronts"] = {name: front_summary(results, truths, final, name, truth,
                                                 strategy.space, run.labels or None,
                                                 run.paid.get(name))
                             for name in strategy.objectives}
    return summary


def objective_values(records: Sequence[Record], objective: str,
                     space: SearchSpace) -> tuple[list[float], bool]:
    """Each record's value of ``objective`` (a measured cost, or a table column looked up; NaN
    where the table does not know the arch) and whether it is maximised."""
    if objective in MEASURED:
        return [getattr(r, objective) for r in records], False
    table = table_objective(space, objective)
    return ([math.nan if v is None else v for v in table.lookup_many(r.arch for r in records)],
            table.maximise)


def space_points(truth: GroundTruth | None, space: SearchSpace,
                 objective: str) -> tuple[list[float], list[float]] | None:
    """(true values, ``objective`` values) of every arch of the space that both know, when
    the ground truth knows the whole space; ``None`` when it does not."""
    if truth is None:
        return None
    if objective in MEASURED:
        points = truth.space_points(objective)
        return None if points is None else (list(points[0]), list(points[1]))
    if truth.space_values() is None:
        return None
    archs = list(space.enumerate())
    pairs = [(t, v) for t, v in zip(truth.lookup_many(archs),
                                    table_objective(space, objective).lookup_many(archs))
             if t is not None and v is not None]
    return [t for t, _ in pairs], [v for _, v in pairs]


def front_summary(results: Sequence[Record], truths: Mapping[str, float | None],
                  fidelity: Fidelity, objective: str, truth: GroundTruth | None,
                  space: SearchSpace, labels: Mapping[str, float] | None = None,
                  paid: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The found front in (fitness, ``objective``) and how much of the true front it covers
    (see the module docstring); points carry the objective's own values. A search that paid for
    ``labels`` found its front among the labelled archs, by their labels; one that paid for the
    objective with them (``paid``: arch -> its value as labelled) by those values too, the
    found points then carrying that value as ``paid`` and measured at the table's."""
    if labels is not None:
        results = list({r.arch: r for r in results if r.arch in labels}.values())
    values, maximise = objective_values(results, objective, space)
    sign = -1.0 if maximise else 1.0  # the objective as a cost, minimised
    chosen_by = values if paid is None else [paid.get(r.arch, math.nan) for r in results]
    known = [(r, v, c) for r, v, c in zip(results, values, chosen_by)
             if truths.get(r.arch) is not None and math.isfinite(v) and math.isfinite(c)]
    scores = [labels[r.arch] if labels is not None else r.score(fidelity.fitness,
                                                                  fidelity.budget)
              for r, _, _ in known]
    costs = [sign * v for _, v, _ in known]
    true = [float(truths[r.arch]) for r, _, _ in known]

    def point(i: int) -> dict[str, Any]:
        out = {"arch": known[i][0].arch, "score": scores[i], "truth": true[i],
               objective: known[i][1]}
        return out if paid is None else {**out, "paid": known[i][2]}

    found = pareto_front(scores, [sign * c for _, _, c in known])
    best = pareto_front(true, costs)
    out: dict[str, Any] = {"maximise": maximise, "found": [point(i) for i in found],
                           "true_among_evaluated": [point(i) for i in best]}
    if not known:
        return out
    whole = space_points(truth, space, objective)
    space_costs = None if whole is None else [sign * v for v in whole[1]]
    found_points = ([true[i] for i in found], [costs[i] for i in found])
    for name, accuracy in (("", float(np.median(true))), ("_from_worst", min(true))):
        reference = (accuracy, max(costs))
        found_hv = hypervolume(*found_points, reference)
        true_hv = hypervolume(true, costs, reference)
        out.update({f"reference{name}": [accuracy, sign * reference[1]],
                    f"coverage_of_evaluated{name}": found_hv / true_hv if true_hv > 0 else None})
        if whole is not None:
            space_hv = hypervolume(whole[0], space_costs, reference)
            out[f"coverage_of_space{name}"] = found_hv / space_hv if space_hv > 0 else None
    if whole is not None:
        out.update(space_coverage(found_points, (true, costs), (whole[0], space_costs), sign,
                                  objective))
    return out


def space_coverage(found: tuple[list[float], list[float]],
                   evaluated: tuple[list[float], list[float]],
                   space: tuple[list[float], list[float]], sign: float,
                   objective: str) -> dict[str, Any]:
    """The space's true front and the ``found`` front's true points against it, all given as
    (true value, cost = ``sign`` * objective): hypervolume fractions from the space's
    reference points, and the share of the front's counted points that the found front (and
    the ``evaluated`` archs) reach (see the module docstring)."""
    front = pareto_front(*space)
    out: dict[str, Any] = {"space_front": [{"truth": space[0][i], objective: sign * space[1][i]}
                                           for i in front]}
    worst_cost = max(space[1])
    for name, accuracy in (("", float(np.median(space[0]))), ("_from_worst", min(space[0]))):
        reference = (accuracy, worst_cost)
        whole = hypervolume(*space, reference)
        out[f"space_reference{name}"] = [accuracy, sign * worst_cost]
        out[f"hypervolume_fraction{name}"] = (hypervolume(*found, reference) / whole
                                              if whole > 0 else None)
    median = out["space_reference"][0]
    counted = [i for i in front if space[0][i] > median and space[1][i] < worst_cost]
    scores, costs = [space[0][i] for i in counted], [space[1][i] for i in counted]
    out.update({"space_front_counted": len(counted), "epsilon": EPSILON})
    if counted:
        span = (EPSILON * (max(scores) - min(scores)), EPSILON * (max(costs) - min(costs)))
        out.update({"space_front_found": float(np.mean(reached(scores, costs, *found))),
                    "space_front_evaluated": float(np.mean(reached(scores, costs, *evaluated))),
                    "space_front_within_epsilon": float(np.mean(reached(scores, costs, *found,
                                                                        span)))})
    return out


def format_strategy(summary: Mapping[str, Any]) -> str:
    """A few lines: the strategy, what it spent, its incumbent, its fronts' coverage."""
    spent, inc = summary["spent"], summary["incumbent"] or {}
    lookup = " [table lookup, not an estimate]" if summary["fitness_is_table_lookup"] else ""
    lines = [f"strategy: {summary['describe']}; fitness {inc.get('fitness')} at "
             f"B={inc.get('budget')}{lookup}",
             f"  spent {spent['evaluations']} evaluations, {spent.get('labels', 0)} labels, "
             f"{spent['steps']:,} fine-tune steps, {spent['seconds']:.1f} s of evaluation; "
             "strategy overhead "
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
        if front.get("hypervolume_fraction") is not None:
            lines.append(_space_line(cost, front))
    return "\n".join(lines)


def _space_line(objective: str, front: Mapping[str, Any]) -> str:
    """The found front against the whole space's true front, in one line."""
    accuracy, value = front["space_reference"]
    line = (f"  vs the space's true front in {objective}: "
            f"{100 * front['hypervolume_fraction']:.2f} % of its hypervolume from (true "
            f"accuracy {accuracy:.4g}, {objective} {value:.4g}), "
            f"{100 * front['hypervolume_fraction_from_worst']:.2f} % from the worst accuracy")
    if front.get("space_front_found") is not None:
        line += (f"; of its {front['space_front_counted']} points above that reference "
                 f"{100 * front['space_front_found']:.0f} % found, "
                 f"{100 * front['space_front_within_epsilon']:.0f} % within "
                 f"{100 * front['epsilon']:.0f} % of their span, "
                 f"{100 * front['space_front_evaluated']:.0f} % evaluated")
    return line


def write_strategy_outputs(summary: Mapping[str, Any], out_dir: Path) -> None:
    """``incumbent.csv``, ``incumbent.png`` and ``front_<objective>.png``."""
    atomic_write_csv(out_dir / "incumbent.csv", summary["trace"], TRACE_COLUMNS)
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
    """The found front at its true accuracies, the true fronts, against objective ``cost``."""
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
    ax.set_xlabel(f"{cost} ({'maximised' if front.get('maximise') else 'minimised'})")
    ax.set_ylabel("true accuracy (%)")
    coverage, space = front.get("coverage_of_evaluated"), front.get("hypervolume_fraction")
    caption = (f"found front: {100 * coverage:.1f} % of the hypervolume of the true front among "
               "the evaluated archs" if coverage is not None else "") + (
        f", {100 * space:.2f} % of the whole space's (from the space's median accuracy)"
        if space is not None else "")
    ax.set_title("\n".join(textwrap.wrap(title, 90) + textwrap.wrap(caption, 90)), fontsize=8)
    references = [front[k][0] for k in ("reference", "space_reference") if k in front]
    if references:  # the measured region: the better half of the accuracies
        top = max(p["truth"] for key in ("space_front", "true_among_evaluated", "found")
                  for p in front.get(key, ()))
        ax.set_ylim(min(references) - 1, top + 0.5)
    ax.grid(alpha=0.3)
    legend_outside(fig)
    save_figure(fig, path)
