"""A search: a strategy proposes archs -> inherited weights -> fine-tune -> every estimator ->
the strategy's next proposals ... -> rankings, incumbent, fronts -> report.

Everything goes to ``RUN_DIR/search/`` (or ``RUN_DIR/search/NAME``): ``config.yaml``,
``candidates.txt`` (the candidate draw), ``results.jsonl`` (one line per evaluation, appended as
soon as it finishes, so a killed search resumes where it stopped; see
:mod:`speedynas_search.evaluator`), ``incumbent.csv``, ``summary.json``/``summary.md``,
``scores.csv`` (every candidate's scores and truth, for re-analysis), PNG plots, ``tb/`` and
``retrain/``.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from speedynas_core.atomic_io import atomic_write_text, dumps_strict, sweep_temporaries
from speedynas_core.config import config_diff, load_config, save_config
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError
from speedynas_core.event_log import EventLog
from speedynas_core.locks import claim_directory, directory_lock
from speedynas_core.runtime import resolve_device, set_deterministic
from estimators.combo import inline_name, parse_inline
from estimators.registry import Estimator, create_estimator, needed_records, zero_cost_measurers
from estimators.trajectory import FINE_TUNE_RECORDS, Candidate, Trajectory
from speedynas_data.run_data import RunData, load_run_data
from search_spaces import Arch
from supernet.measure import arch_flops, arch_parameters
from supernet.run_dir import load_supernet

from .candidates import draw_candidates
from .evaluator import Evaluator
from .finetune import FinetuneBatches, ZeroCostSetup, fine_tune_steps, finetune, prepare_batches
from .report import (
    PARETO_COSTS,
    best_ranked,
    format_best,
    format_table,
    nonfinite_warnings,
    pareto_summary,
    scores_csv,
    summarize,
    write_summary,
)
from .plots import log_figures, plot_correlation_vs_budget, plot_pareto, plot_scores
from .results_store import Record, ResultsStore
from .retrain import retrain_top_k
from .search_config import EstimatorsConfig, SearchConfig, base_name, search_context
from .strategies import BudgetSpent, Fidelity, Strategy
from .strategy_report import format_strategy, strategy_summary, write_strategy_outputs

#: Printed (and put in the summary settings) when no estimator needs a fine-tune.
NO_FINETUNE = "zero-cost only: no fine-tuning"


def search_dir(run_dir: Path, cfg: SearchConfig) -> Path:
    """Where a search of ``run_dir`` writes."""
    return run_dir / "search" / cfg.name if cfg.name else run_dir / "search"


def create_configured(name: str, cfg: EstimatorsConfig) -> Estimator:
    """Estimator ``name`` with its options from ``cfg`` (its sub-section); the members of a
    combination (listed inline, or in its ``members`` option) are created the same way, so they
    carry their own configured options."""
    inline = parse_inline(name)
    options = cfg.options(name)
    if inline is not None:
        options["members"] = inline[1]
    if "members" in options:
        options["members"] = [create_configured(member, cfg) for member in options["members"]]
    estimator = create_estimator(base_name(name), **options)
    if inline is not None:
        estimator.name = inline_name(*inline)  # reported under its inline name
    return estimator


def build_estimators(cfg: SearchConfig) -> list[Estimator]:
    """The configured estimators, checked against every budget (and learned ones against the
    ground truth they fit on) before any work."""
    estimators = [create_configured(name, cfg.estimators) for name in cfg.estimators.names]
    names = [e.name for e in estimators]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpeedyNASError(f"estimators.names lists {', '.join(repeated)} more than once")
    for estimator in estimators:
        for budget in cfg.finetune.budgets:
            estimator.check_budget(budget)
        if estimator.learned and cfg.ground_truth.source is None:
            raise SpeedyNASError(f"estimator {estimator.name!r} is fitted on ground truth: "
                                 "set ground_truth.source (or --ground-truth)")
    return estimators


def changeable_on_resume(key: str) -> bool:
    """Whether config ``key`` may change when a search is resumed: the finished candidates are
    rescored from their stored trajectories (estimator choices and options, ground truth),
    retraining has its own cache, report settings change only the summary, and a budget may
    grow (the strategy goes on) or shrink (evaluations beyond it are left out); anything else
    changes the trajectories themselves."""
    return key.startswith(("estimators.", "ground_truth.", "retrain.", "progress", "plugins",
                           "budget.", "report."))


def prepare_out_dir(out_dir: Path, cfg: SearchConfig, candidates: list[Arch],
                    context: dict[str, Any]) -> None:
    """Save config and candidates, or check that a search being resumed used the same ones
    (keys :func:`changeable_on_resume` may differ; anything may while no candidate has
    finished); ``context`` is the config's load context. ``threads: null`` is resolved to the
    recorded value (a new search: this process's torch default).

    ``out_dir`` is claimed first (:func:`speedynas_core.locks.claim_directory`): a directory that is
    neither new, empty nor a search's is refused; a search made before search dirs were marked
    (it holds results or a summary) gets its marker."""
    claim_directory(out_dir, "search",
                    lambda d: ResultsStore(d).started() or (d / "summary.json").exists(),
                    "use another name=...")
    text = "".join(f"{arch}\n" for arch in candidates)
    saved_cfg, saved_candidates = out_dir / "config.yaml", out_dir / "candidates.txt"
    started = ResultsStore(out_dir).started()
    saved = (load_config(SearchConfig, saved_cfg, context=context, trust_plugins=False)
             if saved_cfg.exists() and started else None)
    if cfg.threads is None:  # recorded at the first run, kept by every resume
        cfg = replace(cfg, threads=saved.threads if saved else torch.get_num_threads())
    if saved is not None:  # no results yet: a refused first try, start afresh
        changed = [key for key in config_diff(saved, cfg) if not changeable_on_resume(key)]
        if changed:
            raise SpeedyNASError(f"{out_dir} holds a search with a different config (differs in: "
                                 f"{', '.join(changed)}); use another name=... to keep both")
        if saved_candidates.exists() and saved_candidates.read_text() != text:
            raise SpeedyNASError(f"the candidates no longer match {saved_candidates} (candidates "
                                 "file changed?); use another name=...")
    save_config(cfg, saved_cfg)
    atomic_write_text(saved_candidates, text)


def _uses_flops(estimator: Estimator) -> bool:
    """Whether ``estimator`` (or a member of it) reads the candidates' FLOPs."""
    return estimator.name == "flops" or any(_uses_flops(m)
                                            for m in getattr(estimator, "members", ()))


class Search:
    """One search of a trained supernet; :meth:`run` is resumable."""

    def __init__(self, run_dir: Path, cfg: SearchConfig, env: DistEnv = DistEnv(),
                 device: torch.device | None = None) -> None:
        self.run_dir, self.cfg, self.env = run_dir, cfg, env
        self.out_dir = search_dir(run_dir, cfg)
        self.device = device if device is not None else resolve_device(cfg.device)
        set_deterministic(cfg.deterministic)
        self.estimators = build_estimators(cfg)
        self.by_name = {e.name: e for e in self.estimators}
        self.records = needed_records(self.estimators)
        z = cfg.zero_cost
        self.zero_cost = ZeroCostSetup(tuple(zero_cost_measurers(self.estimators)), z.weights,
                                       z.batches, z.seed, z.options())
        self.net, self.train_cfg, _ = load_supernet(run_dir, self.device,
                                                    epoch=cfg.supernet_epoch,
                                                    weights=cfg.supernet_weights)
        if self.train_cfg.model.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.candidates = draw_candidates(self.net.space, cfg.candidates)
        self.truth = cfg.ground_truth.create(self.net.space)
        self.strategy: Strategy = cfg.strategy.create(self.net.space)
        self.fidelity = Fidelity(
            fine_tune_steps(cfg.finetune, self.records),
            cfg.strategy.fitness or self.estimators[0].name,
            max(cfg.finetune.budgets) if cfg.strategy.fitness_budget is None
            else cfg.strategy.fitness_budget)
        self.fidelities = self.strategy.fidelities(self.fidelity)
        self.check_fidelities()
        self.store = ResultsStore(self.out_dir, env)
        self._parsed: dict[int, tuple[Trajectory, Candidate]] = {}  # see :meth:`parsed`

    def check_fidelities(self) -> None:
        """Refuse a fitness that is not listed, learned, or unreadable at its B, and an
        open-ended strategy without a budget, before any work."""
        for fidelity in self.fidelities:
            estimator = self.by_name.get(fidelity.fitness)
            if estimator is None:
                raise SpeedyNASError(f"fitness {fidelity.fitness!r} is not in estimators.names "
                                     f"({', '.join(self.by_name)}); list it there")
            if estimator.learned:
                raise SpeedyNASError(f"fitness {fidelity.fitness!r} is fitted on ground truth; "
                                     "a strategy must not see the truth it is judged by")
            estimator.check_budget(fidelity.budget)
            if estimator.needs & FINE_TUNE_RECORDS and fidelity.budget > fidelity.steps:
                raise SpeedyNASError(f"fitness {fidelity.fitness!r} is read at B="
                                     f"{fidelity.budget}, but evaluations fine-tune only "
                                     f"{fidelity.steps} steps (strategy.fitness_budget)")
        flops_users = [e.name for e in self.estimators if _uses_flops(e)]
        if "flops" in self.strategy.objectives:
            flops_users.append("strategy.objectives")
        if flops_users and not self.cfg.count_flops:
            raise SpeedyNASError(f"{', '.join(flops_users)} need(s) FLOPs: set count_flops=true")
        if not self.strategy.bounded and not (
                self.cfg.budget.evaluations or self.cfg.budget.seconds
                or (self.cfg.budget.steps is not None and self.fidelity.steps > 0)):
            raise SpeedyNASError(
                f"strategy {self.strategy.name!r} runs until its budget is spent: set "
                "budget.evaluations or budget.seconds" + (
                    " or budget.steps" if self.fidelity.steps else
                    " (budget.steps does not bound evaluations without fine-tune steps)"))

    def run(self) -> dict[str, Any]:
        """Run the strategy (resuming a killed run), then report (and retrain).

        Under torchrun every rank runs the strategy; the evaluations of each batch are sharded
        over the ranks (see :mod:`speedynas_search.evaluator`), so the numbers are those of a
        single-process search; only rank 0 reports. Returns the summary (empty on other ranks).
        Rank 0 holds the search dir's lock throughout (one writer per search)."""
        with (directory_lock(self.out_dir, "the search") if self.env.is_main
              else contextlib.nullcontext()):
            return self._run()

    def _run(self) -> dict[str, Any]:
        if self.env.is_main:
            prepare_out_dir(self.out_dir, self.cfg, self.candidates,
                            search_context(self.train_cfg))  # claims the dir first
            sweep_temporaries(self.out_dir, self.out_dir / "retrain")
            self.store.merge()
        self.env.barrier()
        recorded = load_config(SearchConfig, self.out_dir / "config.yaml",
                               context=search_context(self.train_cfg),
                               trust_plugins=False).threads
        self.cfg = replace(self.cfg, threads=recorded)
        torch.set_num_threads(recorded)  # the numbers depend on it, not on the process count
        if not self.fidelity.steps and self.env.is_main:
            print(NO_FINETUNE)
        stored = self.up_to_date(self.store.load())
        evaluator = Evaluator(
            self.net.space, self.candidates, self.fidelity, self.fidelities, self.cfg.budget,
            self.store, stored, self.evaluate, {e.name: self.joint_fitness
                                                for e in self.estimators if e.joint},
            self.truth.lookup if self.truth else None,
            self.truth.space_values() if self.truth else None, self.cfg.progress, self.env)
        start = time.perf_counter()
        try:
            self.strategy.run(evaluator)
        except BudgetSpent:
            pass
        finally:
            evaluator.close()
        wall = time.perf_counter() - start
        self.env.barrier()
        records = evaluator.records
        if not records:
            raise SpeedyNASError("the budget allowed no evaluation; raise budget.*")
        if len(stored) > len(records) and self.env.is_main:
            print(f"note: {len(stored) - len(records)} recorded evaluations lie beyond this "
                  "budget and are left out of the report", file=sys.stderr)
        final = [r for r in records if r["steps"] == self.fidelities[-1].steps]
        truths = {r["arch"]: (self.truth.lookup(r["arch"]) if self.truth else None)
                  for r in records}
        budgets = self.summary_budgets(final)
        self.joint_scores(final, truths, sorted(set(budgets) | {self.fidelities[-1].budget}))
        retrain = (retrain_top_k(final, self.cfg, self.train_cfg, truths,
                                 self.out_dir / "retrain", self.device, self.env)
                   if self.cfg.retrain.enabled else None)
        if not self.env.is_main:
            return {}
        run_info = {"wall_seconds": wall, "evaluation_seconds": evaluator.compute_seconds,
                    "spent": vars(evaluator.spent), "trace": evaluator.trace}
        return self.report(final, budgets, truths, retrain, records, run_info)

    @cached_property
    def data(self) -> RunData:
        """The run's images and split, loaded once (only when a candidate needs measuring)."""
        return load_run_data(self.train_cfg.data, self.run_dir, self.train_cfg.model.channels_last)

    @cached_property
    def batches(self) -> FinetuneBatches:
        """The fixed batches every candidate sees, for the longest fine-tune asked for."""
        return self.fixed_batches(self.records, max(f.steps for f in self.fidelities))

    def fixed_batches(self, records: frozenset[str], steps: int | None = None
                      ) -> FinetuneBatches:
        """The fixed batches for ``records`` (``steps`` of them: default max(B)) and the
        zero-cost measures."""
        zero_cost_batches = self.zero_cost.batches if self.zero_cost.measurers else 0
        finetune_cfg = (self.cfg.finetune if steps is None
                        else replace(self.cfg.finetune, budgets=[steps]))
        return prepare_batches(self.data, finetune_cfg, records, self.device, zero_cost_batches)

    def record_budgets(self, steps: int) -> list[int]:
        """The budgets a record with ``steps`` fine-tune steps is scored at: the configured
        ones for the search's own fine-tune, else those up to ``steps`` and ``steps``."""
        own = {f.budget for f in self.fidelities if f.steps == steps}
        if steps == self.fidelity.steps:
            return sorted(set(self.cfg.finetune.budgets) | own)
        return sorted({b for b in self.cfg.finetune.budgets if b <= steps} | {steps} | own)

    def summary_budgets(self, final: list[Record]) -> list[int]:
        """The budgets the final fidelity's evaluations are compared at: the configured ones
        for the search's own fine-tune, else those every estimator scored."""
        steps = final[0]["steps"]
        if steps == self.fidelity.steps:
            return list(self.cfg.finetune.budgets)
        single = [e.name for e in self.estimators if not e.joint]
        return [b for b in self.record_budgets(steps)
                if all(str(b) in r["scores"].get(name, {}) for r in final for name in single)]

    def evaluate(self, index: int, arch: Arch, fidelity: Fidelity) -> Record:
        """Fine-tune ``arch`` for ``fidelity.steps`` and score it with every per-candidate
        estimator; evaluation number ``index``."""
        start = time.perf_counter()
        finetune_cfg = replace(self.cfg.finetune, budgets=self.record_budgets(fidelity.steps))
        trajectory, times = finetune(self.net, arch, self.batches, finetune_cfg, self.records,
                                     self.zero_cost, self.cfg.precision)
        candidate = Candidate(str(arch), params=arch_parameters(arch),
                              flops=arch_flops(arch) if self.cfg.count_flops else None)
        return {"index": index, "arch": str(arch), "steps": fidelity.steps,
                "params": candidate.params, "flops": candidate.flops,
                "seconds": time.perf_counter() - start, "processes": self.env.world_size,
                "train_seconds": times.train, "validation_seconds": times.validation,
                "zero_cost_seconds": times.zero_cost,
                "scores": self.scores(trajectory, candidate, fidelity.steps),
                "trajectory": trajectory.to_dict()}

    def up_to_date(self, stored: dict[int, Record]) -> dict[int, Record]:
        """The recorded evaluations scored by the configured estimators (zero-cost values added
        since are measured); rank 0 saves any change."""
        results = [stored[i] for i in sorted(stored)]
        before = [dumps_strict(r) for r in results]
        self.measure_missing_zero_cost(results)
        self.rescore(results)
        if self.env.is_main and [dumps_strict(r) for r in results] != before:
            self.store.write(results)
        return {r["index"]: r for r in results}

    def measure_missing_zero_cost(self, results: list[dict[str, Any]]) -> None:
        """Measure the zero-cost values finished candidates lack (a zero-cost estimator added
        after they were fine-tuned). They are measured before any update on the fixed batches,
        so they are the values the fine-tune would have recorded."""
        def missing(record: dict[str, Any]) -> tuple[Estimator, ...]:
            have = record["trajectory"].get("zero_cost") or {}
            return tuple(m for m in self.zero_cost.measurers if m.name not in have)

        todo = [(record, lacking) for record in results if (lacking := missing(record))]
        if not todo:
            return
        batches = self.fixed_batches(frozenset({"zero_cost"}))
        for record, lacking in tqdm(todo, desc="zero-cost (added)", unit="arch",
                                    dynamic_ncols=True,
                                    disable=not (self.cfg.progress and self.env.is_main)):
            arch = self.net.space.parse(record["arch"])
            setup = replace(self.zero_cost, measurers=lacking)
            values, seconds = setup.measure(setup.network(self.net, arch),
                                            batches.train[: setup.batches])
            record["trajectory"]["zero_cost"] = {**record["trajectory"].get("zero_cost", {}),
                                                 **values}
            record["zero_cost_seconds"] = {**record.get("zero_cost_seconds", {}), **seconds}

    def scores(self, trajectory: Trajectory, candidate: Candidate,
               steps: int) -> dict[str, dict[str, float]]:
        """Every per-candidate estimator's score at every budget of a record with ``steps``
        fine-tune steps (at budgets beyond the configured ones, where it can score)."""
        budgets = self.record_budgets(steps)
        return {e.name: {str(b): e.score(trajectory, candidate, b) for b in budgets
                         if b in self.cfg.finetune.budgets and steps == self.fidelity.steps
                         or (b >= e.min_budget() and not e.missing(trajectory, b))}
                for e in self.estimators if not e.joint}

    def rescore(self, results: list[dict[str, Any]]) -> None:
        """Score the finished candidates with the configured estimators from their stored
        trajectories (the estimators may have changed since they were fine-tuned)."""
        for record, trajectory, candidate in zip(results, *self.parsed(results)):
            try:
                scores = self.scores(trajectory, candidate, record["steps"])
            except SpeedyNASError as error:
                raise SpeedyNASError(f"{error} (the finished candidates in {self.out_dir} were "
                                     "fine-tuned for other estimators; use another name=...)"
                                     ) from None
            record["scores"] = scores

    def parsed(self, records: list[Record]) -> tuple[list[Trajectory], list[Candidate]]:
        """The trajectories and candidates (with their arch encodings) of ``records``, each
        parsed once per search run (a strategy's joint fitness re-ranks every record after
        every batch)."""
        for r in records:
            if r["index"] not in self._parsed:
                self._parsed[r["index"]] = (Trajectory.from_dict(r["trajectory"]),
                                            Candidate(r["arch"], r["params"], r["flops"],
                                                      self.encoding(r["arch"])))
        pairs = [self._parsed[r["index"]] for r in records]
        return [t for t, _ in pairs], [c for _, c in pairs]

    def encoding(self, arch: str) -> tuple[float, ...] | None:
        """The search space's encoding of ``arch`` (features of learned combinations)."""
        code = self.net.space.encode(self.net.space.parse(arch))
        return None if code is None else tuple(float(v) for v in code)

    def joint_fitness(self, name: str, records: list[Record], budget: int) -> list[float]:
        """A joint estimator's scores of ``records`` at ``budget`` (a strategy's fitness)."""
        return self.by_name[name].score_set(*self.parsed(records), budget)

    def joint_scores(self, results: list[dict[str, Any]], truths: dict[str, float | None],
                     budgets: list[int]) -> None:
        """Add the scores of estimators that rank the whole set (e.g. rank combinations);
        only ``learned`` ones see ``truths``."""
        joint = [e for e in self.estimators if e.joint]
        if not joint:
            return
        trajectories, candidates = self.parsed(results)
        for estimator in joint:
            for budget in budgets:
                values = estimator.score_set(trajectories, candidates, budget,
                                             truths if estimator.learned else None)
                for record, value in zip(results, values):
                    record["scores"].setdefault(estimator.name, {})[str(budget)] = value

    def settings(self) -> dict[str, Any]:
        """The header of the summary: what was trained, searched and compared."""
        t, f = self.train_cfg, self.cfg.finetune
        return {
            "run_dir": str(self.run_dir), "space": t.model.space, "supernet": t.model.options(),
            "sampler": t.sampler.name, "sampler_options": t.sampler.options(),
            "supernet_epochs": self.cfg.supernet_epoch or t.optim.epochs,
            "supernet_weights": self.cfg.supernet_weights,
            "resolution": t.data.resolution,
            "candidates": (self.cfg.candidates.file or
                           f"{self.cfg.candidates.num} uniform, seed {self.cfg.candidates.seed}"),
            "budgets": list(f.budgets), "threads": self.cfg.threads,
            "finetune": (f"lr {f.lr} constant, batch {f.batch_size}, momentum {f.momentum}, "
                         f"wd {f.weight_decay}") if self.fidelity.steps else NO_FINETUNE,
            "val_images": f.val_images,
            "estimators": [e.describe() for e in self.estimators],
            "zero_cost": (f"{self.zero_cost.weights} weights"
                          + (f" (seed {self.zero_cost.seed}, stand-alone network "
                             f"{self.zero_cost.describe_size()})"
                             if self.zero_cost.weights == "init" else "")
                          + f", {self.zero_cost.batches} train batch(es) of {f.batch_size}: "
                          + ", ".join(e.name for e in self.zero_cost.measurers)
                          ) if self.zero_cost.measurers else "none",
            "ground_truth": self.truth.describe() if self.truth else "none",
        }

    @staticmethod
    def zero_cost_seconds(results: list[dict[str, Any]]) -> dict[str, float]:
        """Mean seconds per candidate of each zero-cost estimator's measurement."""
        seconds: dict[str, list[float]] = {}
        for record in results:
            for name, value in (record.get("zero_cost_seconds") or {}).items():
                seconds.setdefault(name, []).append(value)
        return {name: sum(values) / len(values) for name, values in seconds.items()}

    @staticmethod
    def wall_seconds(results: list[dict[str, Any]]) -> float:
        """The candidates' wall time: each record's seconds over the processes that shared its
        search run (so a search resumed with another process count still adds up)."""
        return sum(r["seconds"] / r.get("processes", 1) for r in results)

    def report(self, results: list[Record], budgets: list[int],
               truths: dict[str, float | None], retrain: dict[str, Any] | None,
               records: list[Record], run_info: dict[str, Any]) -> dict[str, Any]:
        """Summary table of the final fidelity's evaluations (``results``), incumbent trace,
        Pareto fronts, plots, TensorBoard; returns the summary."""
        names = [e.name for e in self.estimators]
        summary = summarize(results, truths, names, budgets, self.settings(),
                            learned=[e.name for e in self.estimators if e.learned],
                            resamples=self.cfg.report.resamples,
                            top_fraction=self.cfg.report.top_fraction)
        summary["lookups"] = [e.name for e in self.estimators if e.lookup]
        summary["seconds_per_candidate"] = sum(r["seconds"] for r in results) / len(results)
        summary["search_wall_seconds"] = self.wall_seconds(records)
        summary["zero_cost_seconds_per_candidate"] = self.zero_cost_seconds(results)
        costs = [c for c in PARETO_COSTS if c != "flops" or self.cfg.count_flops]
        summary["pareto"] = pareto_summary(results, names, max(budgets), costs)
        final = self.fidelities[-1]
        space_values = self.truth.space_values() if self.truth else None
        summary["best"] = best_ranked(results, truths, final.fitness, final.budget, space_values)
        summary["strategy"] = strategy_summary(
            self.strategy, self.fidelities, self.cfg.budget, run_info, results, truths,
            self.truth, summary["lookups"])
        for cost in costs:
            plot_pareto(results, summary["pareto"], cost, self.out_dir / f"pareto_{cost}.png")
        if retrain is not None:
            summary["retrain"] = retrain
        write_strategy_outputs(summary["strategy"], self.out_dir)
        write_summary(summary, self.out_dir)
        atomic_write_text(self.out_dir / "scores.csv", scores_csv(results, truths, names, budgets))
        if self.truth is not None:
            self.plot(results, truths, summary)
        print(format_table(summary), end="\n\n")
        print(format_best(summary["best"]))
        print(format_strategy(summary["strategy"]))
        for line in nonfinite_warnings(summary):
            print(line, file=sys.stderr)
        return summary

    def plot(self, results: list[dict[str, Any]], truths: dict[str, float | None],
             summary: dict[str, Any]) -> None:
        """PNG plots, also logged (with the correlations) to TensorBoard."""
        names, budgets = summary["estimators"], summary["budgets"]
        figures = {
            "scores_vs_truth": plot_scores(
                results, truths, summary, max(budgets), self.out_dir / "scores_vs_truth.png",
                marked={r["arch"] for r in results
                        if self.net.space.is_degenerate(self.net.space.parse(r["arch"]))}),
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
