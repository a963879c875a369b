"""A search: candidates -> inherited weights -> fine-tune -> every estimator -> rankings -> report.

Everything goes to ``RUN_DIR/search/`` (or ``RUN_DIR/search/NAME``): ``config.yaml``,
``candidates.txt``, ``results.jsonl`` (one line per finished candidate, appended as soon as it
finishes, so a killed search resumes where it stopped), ``summary.json``/``summary.md``, PNG
plots, ``tb/`` and ``retrain/``.
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
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from core.atomic_io import (
    append_jsonl,
    atomic_write_text,
    dumps_strict,
    read_jsonl,
    sweep_temporaries,
)
from core.config import config_diff, load_config, save_config
from core.distributed import DistEnv
from core.errors import SpeedyNASError
from core.locks import directory_lock
from core.runtime import resolve_device, set_deterministic
from estimators.combo import inline_name, parse_inline
from estimators.registry import Estimator, create_estimator, needed_records, zero_cost_measurers
from estimators.trajectory import Candidate, Trajectory
from imagedata.run_data import RunData, load_run_data
from search_spaces import Arch
from supernet.measure import arch_flops, arch_parameters
from supernet.run_dir import load_supernet

from .candidates import draw_candidates
from .finetune import FinetuneBatches, ZeroCostSetup, fine_tune_steps, finetune, prepare_batches
from .report import (
    PARETO_COSTS,
    best_ranked,
    format_best,
    format_table,
    log_figures,
    nonfinite_warnings,
    pareto_summary,
    plot_correlation_vs_budget,
    plot_pareto,
    plot_scores,
    summarize,
    write_summary,
)
from .retrain import retrain_top_k
from .search_config import EstimatorsConfig, SearchConfig, base_name, search_context

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
    and retraining has its own cache; anything else changes the trajectories themselves."""
    if key.startswith("estimators.zero_cost_"):
        return False
    return key.startswith(("estimators.", "ground_truth.", "retrain.", "progress", "plugins"))


def prepare_out_dir(out_dir: Path, cfg: SearchConfig, candidates: list[Arch],
                    context: dict[str, Any]) -> None:
    """Save config and candidates, or check that a search being resumed used the same ones
    (keys :func:`changeable_on_resume` may differ; anything may while no candidate has
    finished); ``context`` is the config's load context. ``threads: null`` is resolved to the
    recorded value (a new search: this process's torch default)."""
    text = "".join(f"{arch}\n" for arch in candidates)
    saved_cfg, saved_candidates = out_dir / "config.yaml", out_dir / "candidates.txt"
    started = (out_dir / "results.jsonl").exists() or any(out_dir.glob("results.rank*.jsonl"))
    saved = (load_config(SearchConfig, saved_cfg, context=context)
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


class Search:
    """One search of a trained supernet; :meth:`run` is resumable."""

    def __init__(self, run_dir: Path, cfg: SearchConfig, env: DistEnv = DistEnv(),
                 device: torch.device | None = None) -> None:
        self.run_dir, self.cfg, self.env = run_dir, cfg, env
        self.out_dir = search_dir(run_dir, cfg)
        self.device = device if device is not None else resolve_device(cfg.device)
        set_deterministic(cfg.deterministic)
        self.estimators = build_estimators(cfg)
        self.records = needed_records(self.estimators)
        e = cfg.estimators
        self.zero_cost = ZeroCostSetup(tuple(zero_cost_measurers(self.estimators)),
                                       e.zero_cost_weights, e.zero_cost_batches, e.zero_cost_seed)
        self.fine_tunes = fine_tune_steps(cfg.finetune, self.records) > 0
        self.net, self.train_cfg, _ = load_supernet(run_dir, self.device)
        if self.train_cfg.model.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.candidates = draw_candidates(self.net.space, cfg.candidates)
        self.truth = cfg.ground_truth.create(self.net.space)

    def run(self) -> dict[str, Any]:
        """Score every candidate not yet in the results, then report (and retrain).

        Under torchrun, rank r scores the unfinished candidates i with i % world_size == r into
        ``results.rank{r}.jsonl``; rank 0 then merges them into ``results.jsonl`` in candidate
        order (each candidate's fine-tune depends on nothing else, so the numbers are those of a
        single-process search), and only rank 0 reports. Returns the summary (empty on other
        ranks). Rank 0 holds the search dir's lock throughout (one writer per search)."""
        with (directory_lock(self.out_dir, "the search") if self.env.is_main
              else contextlib.nullcontext()):
            return self._run()

    def _run(self) -> dict[str, Any]:
        if self.env.is_main:
            sweep_temporaries(self.out_dir, self.out_dir / "retrain")
            prepare_out_dir(self.out_dir, self.cfg, self.candidates,
                            search_context(self.train_cfg))
        self.env.barrier()
        recorded = load_config(SearchConfig, self.out_dir / "config.yaml",
                               context=search_context(self.train_cfg)).threads
        self.cfg = replace(self.cfg, threads=recorded)
        torch.set_num_threads(recorded)  # the numbers depend on it, not on the process count
        done = {r["index"] for r in self.finished()}
        mine = [i for i in range(len(self.candidates))
                if i not in done and i % self.env.world_size == self.env.rank]
        if not self.fine_tunes and self.env.is_main:
            print(NO_FINETUNE)
        if mine:
            own = self.out_dir / ("results.jsonl" if not self.env.distributed
                                  else f"results.rank{self.env.rank}.jsonl")
            batches = self.fixed_batches(self.records)
            for i in tqdm(mine, desc="candidates", unit="arch", dynamic_ncols=True,
                          disable=not (self.cfg.progress and self.env.is_main)):
                append_jsonl(own, self.evaluate(i, batches))
        self.env.barrier()
        if self.env.is_main:
            self.merge()
        self.env.barrier()
        results = self.up_to_date_results()
        truths = {r["arch"]: (self.truth.lookup(r["arch"]) if self.truth else None)
                  for r in results}
        self.joint_scores(results, truths)
        retrain = (retrain_top_k(results, self.cfg, self.train_cfg, truths,
                                 self.out_dir / "retrain", self.device, self.env)
                   if self.cfg.retrain.enabled else None)
        return self.report(results, truths, retrain) if self.env.is_main else {}

    def partial_files(self) -> list[Path]:
        """Per-rank results of a sharded search not yet merged."""
        return sorted(self.out_dir.glob("results.rank*.jsonl"))

    def finished(self) -> list[dict[str, Any]]:
        """Every finished candidate's record, merged or not."""
        records = self.read_records(self.out_dir / "results.jsonl", missing_ok=True)
        for path in self.partial_files():
            records += self.read_records(path)
        return records

    def read_records(self, path: Path, missing_ok: bool = False) -> list[dict[str, Any]]:
        """The records of ``path``, each checked against the candidates: an object with an
        ``index`` among them, that candidate's ``arch``, ``scores``, and no index twice."""
        records, seen = read_jsonl(path, missing_ok=missing_ok), set()
        for number, record in enumerate(records, 1):
            problem = self.record_problem(record, seen)
            if problem:
                raise SpeedyNASError(f"{path}, record {number}: {problem}; it does not belong "
                                     f"to this search's {len(self.candidates)} candidates "
                                     f"({self.out_dir / 'candidates.txt'}); move the file away "
                                     "to start the search over")
            seen.add(record["index"])
        return records

    def record_problem(self, record: Any, seen: set[int]) -> str | None:
        """Why ``record`` is not a results record of this search (``None`` when it is)."""
        if not isinstance(record, dict) or not isinstance(record.get("scores"), dict):
            return "not a results record (a JSON object with index, arch and scores)"
        index = record.get("index")
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(self.candidates):
            return f"index {index!r} is not a candidate index (0 to {len(self.candidates) - 1})"
        if record.get("arch") != str(self.candidates[index]):
            return f"candidate {index} is {self.candidates[index]}, not {record.get('arch')}"
        if index in seen:
            return f"candidate {index} appears twice"
        return None

    def merge(self) -> None:
        """Fold the per-rank files into ``results.jsonl`` (one line per candidate, in order)."""
        partial = self.partial_files()
        if not partial:
            return
        by_index = {r["index"]: r for r in self.finished()}
        atomic_write_text(self.out_dir / "results.jsonl", "".join(
            dumps_strict(by_index[i]) + "\n" for i in sorted(by_index)))
        for path in partial:
            path.unlink()

    def evaluate(self, index: int, batches: FinetuneBatches) -> dict[str, Any]:
        """Fine-tune candidate ``index`` and score it with every per-candidate estimator."""
        start = time.perf_counter()
        arch = self.candidates[index]
        trajectory, times = finetune(self.net, arch, batches, self.cfg.finetune, self.records,
                                     self.zero_cost)
        candidate = Candidate(str(arch), params=arch_parameters(arch), flops=arch_flops(arch))
        return {"index": index, "arch": str(arch), "params": candidate.params,
                "flops": candidate.flops, "seconds": time.perf_counter() - start,
                "processes": self.env.world_size,
                "train_seconds": times.train, "validation_seconds": times.validation,
                "zero_cost_seconds": times.zero_cost,
                "scores": self.scores(trajectory, candidate), "trajectory": trajectory.to_dict()}

    def up_to_date_results(self) -> list[dict[str, Any]]:
        """Every finished candidate's record, in order, scored by the configured estimators
        (zero-cost values added since are measured); rank 0 saves any change."""
        results = sorted(self.read_records(self.out_dir / "results.jsonl"),
                         key=lambda r: r["index"])
        stored = [dumps_strict(r) for r in results]
        self.measure_missing_zero_cost(results)
        self.rescore(results)
        lines = [dumps_strict(r) for r in results]
        if self.env.is_main and lines != stored:
            atomic_write_text(self.out_dir / "results.jsonl", "".join(f"{line}\n" for line in lines))
        return results

    @cached_property
    def data(self) -> RunData:
        """The run's images and split, loaded once (only when a candidate needs measuring)."""
        return load_run_data(self.train_cfg.data, self.run_dir, self.train_cfg.model.channels_last)

    def fixed_batches(self, records: frozenset[str]) -> FinetuneBatches:
        """The fixed batches every candidate sees, for ``records`` and the zero-cost measures."""
        zero_cost_batches = self.zero_cost.batches if self.zero_cost.measurers else 0
        return prepare_batches(self.data, self.cfg.finetune, records, self.device,
                               zero_cost_batches)

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
            arch = self.candidates[record["index"]]
            setup = replace(self.zero_cost, measurers=lacking)
            values, seconds = setup.measure(setup.network(self.net, arch),
                                            batches.train[: setup.batches])
            record["trajectory"]["zero_cost"] = {**record["trajectory"].get("zero_cost", {}),
                                                 **values}
            record["zero_cost_seconds"] = {**record.get("zero_cost_seconds", {}), **seconds}

    def scores(self, trajectory: Trajectory, candidate: Candidate) -> dict[str, dict[str, float]]:
        """Every per-candidate estimator's score at every budget."""
        return {e.name: {str(b): e.score(trajectory, candidate, b)
                         for b in self.cfg.finetune.budgets}
                for e in self.estimators if not e.joint}

    def rescore(self, results: list[dict[str, Any]]) -> None:
        """Score the finished candidates with the configured estimators from their stored
        trajectories (the estimators may have changed since they were fine-tuned)."""
        for record in results:
            trajectory = Trajectory.from_dict(record["trajectory"])
            candidate = Candidate(record["arch"], record["params"], record["flops"])
            try:
                scores = self.scores(trajectory, candidate)
            except SpeedyNASError as error:
                raise SpeedyNASError(f"{error} (the finished candidates in {self.out_dir} were "
                                     "fine-tuned for other estimators; use another name=...)"
                                     ) from None
            record["scores"] = scores

    def joint_scores(self, results: list[dict[str, Any]],
                     truths: dict[str, float | None]) -> None:
        """Add the scores of estimators that rank the whole set (e.g. rank combinations);
        only ``learned`` ones see ``truths``."""
        joint = [e for e in self.estimators if e.joint]
        if not joint:
            return
        trajectories = [Trajectory.from_dict(r["trajectory"]) for r in results]
        candidates = [Candidate(r["arch"], r["params"], r["flops"]) for r in results]
        for estimator in joint:
            for budget in self.cfg.finetune.budgets:
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
            "supernet_epochs": t.optim.epochs, "resolution": t.data.resolution,
            "candidates": (self.cfg.candidates.file or
                           f"{self.cfg.candidates.num} uniform, seed {self.cfg.candidates.seed}"),
            "budgets": list(f.budgets), "threads": self.cfg.threads,
            "finetune": (f"lr {f.lr} constant, batch {f.batch_size}, momentum {f.momentum}, "
                         f"wd {f.weight_decay}") if self.fine_tunes else NO_FINETUNE,
            "val_images": f.val_images,
            "estimators": [e.describe() for e in self.estimators],
            "zero_cost": (f"{self.zero_cost.weights} weights"
                          + (f" (seed {self.zero_cost.seed})"
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

    def report(self, results: list[dict[str, Any]], truths: dict[str, float | None],
               retrain: dict[str, Any] | None) -> dict[str, Any]:
        """Summary table, Pareto fronts, plots, TensorBoard; returns the summary."""
        names = [e.name for e in self.estimators]
        budgets = list(self.cfg.finetune.budgets)
        summary = summarize(results, truths, names, budgets, self.settings(),
                            learned=[e.name for e in self.estimators if e.learned])
        summary["seconds_per_candidate"] = sum(r["seconds"] for r in results) / len(results)
        summary["search_wall_seconds"] = self.wall_seconds(results)
        summary["zero_cost_seconds_per_candidate"] = self.zero_cost_seconds(results)
        summary["pareto"] = pareto_summary(results, names, max(budgets))
        summary["best"] = best_ranked(results, truths, names[0], max(budgets),
                                      self.truth.space_values() if self.truth else None)
        for cost in PARETO_COSTS:
            plot_pareto(results, summary["pareto"], cost, self.out_dir / f"pareto_{cost}.png")
        if retrain is not None:
            summary["retrain"] = retrain
        write_summary(summary, self.out_dir)
        if self.truth is not None:
            self.plot(results, truths, summary)
        print(format_table(summary))
        print(format_best(summary["best"]))
        for line in nonfinite_warnings(summary):
            print(line, file=sys.stderr)
        return summary

    def plot(self, results: list[dict[str, Any]], truths: dict[str, float | None],
             summary: dict[str, Any]) -> None:
        """PNG plots, also logged (with the correlations) to TensorBoard."""
        names, budgets = summary["estimators"], summary["budgets"]
        figures = {
            "scores_vs_truth": plot_scores(results, truths, names, max(budgets),
                                           self.out_dir / "scores_vs_truth.png"),
            "correlation_vs_budget": plot_correlation_vs_budget(
                summary, self.out_dir / "correlation_vs_budget.png"),
        }
        with SummaryWriter(str(self.out_dir / "tb")) as writer:
            log_figures(writer, figures)
            for name in names:
                for budget in budgets:
                    spearman = summary["metrics"][name][str(budget)]["spearman"]
                    if spearman is not None:
                        writer.add_scalar(f"spearman/{name}", spearman, budget)
