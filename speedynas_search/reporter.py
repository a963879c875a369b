"""A search's report: the summary (:mod:`speedynas_search.report`'s maths and tables, the
strategy's incumbent and fronts), ``scores.csv``, the plots (:mod:`speedynas_search.plots`)
and TensorBoard, written to the search's folder and printed."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import atomic_write_text
from speedynas_core.event_log import EventLog
from search_spaces.ground_truth import GroundTruth
from supernet.train_config import TrainConfig

from .evaluation_runner import NO_FINETUNE, EvaluationRun
from .finetune import ZeroCostSetup
from .plots import log_figures, plot_correlation_vs_budget, plot_pareto, plot_scores
from .report import (
    PARETO_COSTS,
    best_ranked,
    format_best,
    format_labels,
    format_table,
    labels_summary,
    nonfinite_warnings,
    pareto_summary,
    scores_csv,
    summarize,
    write_summary,
)
from .results_store import Record
from .scorer import Scorer
from .search_config import SearchConfig
from .strategies import Strategy
from .strategy_report import format_strategy, strategy_summary, write_strategy_outputs


def zero_cost_seconds(records: Sequence[Record]) -> dict[str, float]:
    """Mean seconds per candidate of each zero-cost estimator's measurement."""
    seconds: dict[str, list[float]] = {}
    for record in records:
        for name, value in record.zero_cost_seconds.items():
            seconds.setdefault(name, []).append(value)
    return {name: sum(values) / len(values) for name, values in seconds.items()}


def wall_seconds(records: Sequence[Record]) -> float:
    """The candidates' wall time: each record's seconds over the processes that shared its
    search run (so a search resumed with another process count still adds up)."""
    return sum(r.seconds / r.processes for r in records)


class Reporter:
    """Reports the search of ``run_dir`` (its ``cfg``) in ``out_dir``."""

    def __init__(self, cfg: SearchConfig, train_cfg: TrainConfig, run_dir: Path, out_dir: Path,
                 scorer: Scorer, zero_cost: ZeroCostSetup, strategy: Strategy,
                 truth: GroundTruth | None, labels: GroundTruth | None = None) -> None:
        self.cfg, self.train_cfg, self.run_dir, self.out_dir = cfg, train_cfg, run_dir, out_dir
        self.scorer, self.zero_cost, self.strategy, self.truth = scorer, zero_cost, strategy, truth
        self.labels = labels

    def settings(self, threads: int) -> dict[str, Any]:
        """The header of the summary: what was trained, searched (with ``threads`` torch
        threads) and compared."""
        t, f, z = self.train_cfg, self.cfg.finetune, self.zero_cost
        trained_by = ({"method": t.method.name, "method_options": t.method.options()}
                      if t.method.name else
                      {"sampler": t.sampler.name, "sampler_options": t.sampler.options()})
        return {
            "run_dir": str(self.run_dir), "space": t.model.space, "supernet": t.model.options(),
            **trained_by,
            "supernet_epochs": self.cfg.supernet_epoch or t.optim.epochs,
            "supernet_weights": self.cfg.supernet_weights,
            "resolution": t.data.resolution,
            "candidates": (self.cfg.candidates.file or
                           f"{self.cfg.candidates.num} uniform, seed {self.cfg.candidates.seed}"),
            "budgets": list(f.budgets), "threads": threads,
            "finetune": (f"lr {f.lr} constant, batch {f.batch_size}, momentum {f.momentum}, "
                         f"wd {f.weight_decay}") if self.scorer.own_steps else NO_FINETUNE,
            "val_images": f.val_images,
            "estimators": [e.describe() for e in self.scorer.estimators],
            "zero_cost": (f"{z.weights} weights"
                          + (f" (seed {z.seed}, stand-alone network {z.describe_size()})"
                             if z.weights == "init" else "")
                          + f", {z.batches} train batch(es) of {f.batch_size}: "
                          + ", ".join(e.name for e in z.measurers)) if z.measurers else "none",
            "ground_truth": self.truth.describe() if self.truth else "none",
            "labels": self.labels.describe() if self.labels else "none",
        }

    def report(self, final: list[Record], budgets: list[int], truths: dict[str, float | None],
               retrain: dict[str, Any] | None, run: EvaluationRun) -> dict[str, Any]:
        """Summary of the final fidelity's records (``final``) compared at ``budgets``, the
        incumbent trace, Pareto fronts, plots, TensorBoard; printed, and returned."""
        estimators = self.scorer.estimators
        names = [e.name for e in estimators]
        learned = [e.name for e in estimators if e.learned]
        summary = summarize(final, truths, names, budgets, self.settings(run.threads),
                            learned=learned,
                            resamples=self.cfg.report.resamples,
                            top_fraction=self.cfg.report.top_fraction)
        summary["lookups"] = [e.name for e in estimators if e.lookup]
        summary["seconds_per_candidate"] = sum(r.seconds for r in final) / len(final)
        summary["search_wall_seconds"] = wall_seconds(run.records)
        summary["zero_cost_seconds_per_candidate"] = zero_cost_seconds(final)
        costs = [c for c in PARETO_COSTS if c != "flops" or self.cfg.count_flops]
        summary["pareto"] = pareto_summary(final, names, max(budgets), costs)
        last = self.scorer.fidelities[-1]
        space_values = self.truth.space_values() if self.truth else None
        summary["best"] = best_ranked(final, truths, last.fitness, last.budget, space_values)
        summary["strategy"] = strategy_summary(
            self.strategy, self.scorer.fidelities, self.cfg.limit, run, final, truths,
            self.truth, summary["lookups"])
        for cost in costs:
            plot_pareto(final, summary["pareto"], cost, self.out_dir / f"pareto_{cost}.png")
        summary["labels"] = labels_summary(
            final, learned, budgets, run.spent.labels,
            self.labels.describe() if self.labels else None,
            self.truth.describe() if self.truth else None)
        if retrain is not None:
            summary["retrain"] = retrain
        write_strategy_outputs(summary["strategy"], self.out_dir)
        write_summary(summary, self.out_dir)
        atomic_write_text(self.out_dir / "scores.csv", scores_csv(final, truths, names, budgets))
        if self.truth is not None:
            self.plot(final, truths, summary)
        print(format_table(summary), end="\n\n")
        print(format_best(summary["best"]))
        print(format_strategy(summary["strategy"]))
        if summary["labels"]["total"]:
            print(format_labels(summary["labels"]))
        for line in nonfinite_warnings(summary):
            print(line, file=sys.stderr)
        return summary

    def plot(self, final: list[Record], truths: dict[str, float | None],
             summary: dict[str, Any]) -> None:
        """PNG plots, also logged (with the correlations) to TensorBoard."""
        names, budgets, space = summary["estimators"], summary["budgets"], self.scorer.space
        figures = {
            "scores_vs_truth": plot_scores(
                final, truths, summary, max(budgets), self.out_dir / "scores_vs_truth.png",
                marked={r.arch for r in final if space.is_degenerate(space.parse(r.arch))}),
            "correlation_vs_budget": plot_correlation_vs_budget(
                summary, self.out_dir / "correlation_vs_budget.png"),
        }
        with EventLog(self.out_dir / "tb") as writer:
            log_figures(writer, figures)
            for name in names:
                for budget in budgets:
                    spearman = summary["metrics"][name][str(budget)]["spearman"]
                    if spearman is not None:
                        writer.add_scalar(f"spearman/{name}", spearman, budget)
            for entry in summary["strategy"]["trace"]:
                if "truth" in entry:
                    writer.add_scalar("incumbent/true_accuracy", entry["truth"], entry["steps"])
                    writer.add_scalar("incumbent/true_accuracy_by_evaluations", entry["truth"],
                                      entry["evaluations"])
