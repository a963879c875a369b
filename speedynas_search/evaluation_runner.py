"""Making a search's evaluations: its folder and results (a killed search resumes), the
strategy driving the :class:`~speedynas_search.evaluator.Evaluator` within the limits, each
evaluation's fine-tune from inherited weights, and the zero-cost values that finished records
lack (an estimator added since they were fine-tuned)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from speedynas_core.atomic_io import dumps_strict, sweep_temporaries
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError
from estimators.registry import Estimator, zero_cost_measurers
from estimators.trajectory import Candidate
from search_spaces import Arch
from search_spaces.ground_truth import GroundTruth
from speedynas_data.run_data import RunData, load_run_data
from supernet.base import Supernet
from supernet.measure import arch_flops, arch_parameters
from supernet.train_config import TrainConfig

from .evaluator import Evaluator, Spent
from .finetune import FinetuneBatches, ZeroCostSetup, finetune, prepare_batches
from .labels import LabelBook
from .results_store import Record, ResultsStore
from .scorer import Scorer
from .search_config import SearchConfig, search_context
from .search_dir import prepare_out_dir, recorded_threads
from .strategies import Fidelity, LimitReached, Strategy

#: Printed (and put in the summary settings) when no estimator needs a fine-tune.
NO_FINETUNE = "zero-cost only: no fine-tuning"


@dataclass
class EvaluationRun:
    """What a run of the strategy did: its ``records`` in evaluation order (those within the
    limits), what they cost, the incumbent after each, this run's wall and evaluation seconds,
    the torch threads every run of the search uses, and the labels a strategy paid for (with
    the values of the objectives paid with them) and this run's seconds getting them."""

    records: list[Record]
    spent: Spent
    trace: list[dict[str, Any]]
    wall_seconds: float
    evaluation_seconds: float
    threads: int
    labels: dict[str, float] = field(default_factory=dict)  # arch -> label a strategy paid for
    paid: dict[str, dict[str, float]] = field(default_factory=dict)  # objective -> arch -> value
    label_seconds: float = 0.0


class EvaluationRunner:
    """Makes the evaluations of the search of ``net`` in ``out_dir``; :meth:`run` is resumable."""

    def __init__(self, cfg: SearchConfig, train_cfg: TrainConfig, run_dir: Path, out_dir: Path,
                 net: Supernet, candidates: list[Arch], scorer: Scorer, own: Fidelity,
                 env: DistEnv, device: torch.device) -> None:
        self.cfg, self.train_cfg, self.run_dir, self.out_dir = cfg, train_cfg, run_dir, out_dir
        self.net, self.candidates, self.scorer, self.own = net, candidates, scorer, own
        self.env, self.device = env, device
        z = cfg.zero_cost
        self.zero_cost = ZeroCostSetup(tuple(zero_cost_measurers(scorer.estimators)), z.weights,
                                       z.batches, z.seed, z.options())
        self.store = ResultsStore(out_dir, env)

    def run(self, strategy: Strategy, truth: GroundTruth | None,
            labels: GroundTruth | None = None) -> EvaluationRun:
        """Resume or start the search's folder, bring its records up to date, then run
        ``strategy`` until it is done or a limit stops it (every rank; see
        :mod:`speedynas_search.evaluator`); ``labels``: the source of the labels it pays for."""
        context = search_context(self.train_cfg)
        if self.env.is_main:
            prepare_out_dir(self.out_dir, self.cfg, self.candidates, context)  # claims it first
            sweep_temporaries(self.out_dir, self.out_dir / "retrain")
            self.store.merge()
        self.env.barrier()
        threads = recorded_threads(self.out_dir, context)
        torch.set_num_threads(threads)  # the numbers depend on it, not on the process count
        if not self.own.steps and self.env.is_main:
            print(NO_FINETUNE)
        stored = self.up_to_date(self.store.load())
        evaluator = Evaluator(
            self.net.space, self.candidates, self.own, self.scorer.fidelities, self.cfg.limit,
            self.store, stored, self.evaluate,
            {e.name: self.scorer.joint_fitness for e in self.scorer.estimators if e.joint},
            truth.lookup if truth else None, truth.space_values() if truth else None,
            self.cfg.progress, self.env, strategy.evaluation_count(len(self.candidates)),
            LabelBook(labels, self.out_dir / "labels.jsonl", self.env) if labels else None,
            frozenset(e.name for e in self.scorer.estimators if e.lookup))
        start = time.perf_counter()
        try:
            strategy.run(evaluator)
        except LimitReached:
            pass
        finally:
            evaluator.close()
        wall = time.perf_counter() - start
        self.env.barrier()
        if not evaluator.records:
            raise SpeedyNASError("the limits allowed no evaluation; raise limit.*")
        if len(stored) > len(evaluator.records) and self.env.is_main:
            print(f"note: {len(stored) - len(evaluator.records)} recorded evaluations lie beyond "
                  "the limits and are left out of the report", file=sys.stderr)
        book = evaluator.labels
        return EvaluationRun(evaluator.records, evaluator.spent, evaluator.trace, wall,
                             evaluator.compute_seconds, threads,
                             dict(book.labels) if book else {}, book.paid if book else {},
                             evaluator.label_seconds)

    @cached_property
    def data(self) -> RunData:
        """The run's images and split, loaded once (only when a candidate needs measuring)."""
        return load_run_data(self.train_cfg.data, self.run_dir, self.train_cfg.model.channels_last)

    @cached_property
    def batches(self) -> FinetuneBatches:
        """The fixed batches every candidate sees, for the longest fine-tune of any fidelity."""
        return self.fixed_batches(self.scorer.needs,
                                  max(f.steps for f in self.scorer.fidelities))

    def fixed_batches(self, needs: frozenset[str], steps: int | None = None) -> FinetuneBatches:
        """The fixed batches for the records ``needs`` names (for ``steps`` updates: default
        max(B)) and the zero-cost measures."""
        zero_cost_batches = self.zero_cost.batches if self.zero_cost.measurers else 0
        return prepare_batches(self.data, self.cfg.finetune, needs, self.device,
                               zero_cost_batches, steps)

    def evaluate(self, index: int, arch: Arch, fidelity: Fidelity) -> Record:
        """Evaluation number ``index``: fine-tune ``arch`` for ``fidelity.steps`` and score it
        with every per-candidate estimator."""
        start = time.perf_counter()
        trajectory, times = finetune(self.net, arch, self.batches, self.cfg.finetune,
                                     self.scorer.needs, self.zero_cost, self.cfg.precision,
                                     steps=fidelity.steps,
                                     budgets=self.scorer.budgets_at(fidelity.steps))
        candidate = Candidate(str(arch), params=arch_parameters(arch),
                              flops=arch_flops(arch) if self.cfg.count_flops else None)
        return Record(index=index, arch=str(arch), steps=fidelity.steps,
                      params=candidate.params, flops=candidate.flops,
                      seconds=time.perf_counter() - start, processes=self.env.world_size,
                      train_seconds=times.train, validation_seconds=times.validation,
                      zero_cost_seconds=times.zero_cost,
                      scores=self.scorer.scores(trajectory, candidate, fidelity.steps),
                      trajectory=trajectory.to_dict())

    def up_to_date(self, stored: dict[int, Record]) -> dict[int, Record]:
        """The recorded evaluations scored by the configured estimators (zero-cost values added
        since are measured); rank 0 saves any change."""
        records = [stored[i] for i in sorted(stored)]
        before = [dumps_strict(r.to_json()) for r in records]
        self.measure_missing_zero_cost(records)
        self.scorer.rescore(records, self.out_dir)
        if self.env.is_main and [dumps_strict(r.to_json()) for r in records] != before:
            self.store.write(records)
        return {r.index: r for r in records}

    def measure_missing_zero_cost(self, records: list[Record]) -> None:
        """Measure the zero-cost values finished records lack (a zero-cost estimator added
        after they were fine-tuned). They are measured before any update on the fixed batches,
        so they are the values the fine-tune would have recorded."""
        def missing(record: Record) -> tuple[Estimator, ...]:
            have = record.trajectory.get("zero_cost") or {}
            return tuple(m for m in self.zero_cost.measurers if m.name not in have)

        todo = [(record, lacking) for record in records if (lacking := missing(record))]
        if not todo:
            return
        batches = self.fixed_batches(frozenset({"zero_cost"}))
        for record, lacking in tqdm(todo, desc="zero-cost (added)", unit="arch",
                                    dynamic_ncols=True,
                                    disable=not (self.cfg.progress and self.env.is_main)):
            arch = self.net.space.parse(record.arch)
            setup = replace(self.zero_cost, measurers=lacking)
            values, seconds = setup.measure(setup.network(self.net, arch),
                                            batches.train[: setup.batches])
            record.trajectory["zero_cost"] = {**record.trajectory.get("zero_cost", {}), **values}
            record.zero_cost_seconds = {**record.zero_cost_seconds, **seconds}
