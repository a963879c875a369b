"""A search: a strategy proposes archs -> inherited weights -> fine-tune -> every estimator ->
the strategy's next proposals ... -> rankings, incumbent, fronts -> report.

:class:`Search` puts it together from three parts: an
:class:`~speedynas_search.evaluation_runner.EvaluationRunner` makes the evaluations, a
:class:`~speedynas_search.scorer.Scorer` scores them and a
:class:`~speedynas_search.reporter.Reporter` reports them.

Everything goes to ``RUN_DIR/search/`` (or ``RUN_DIR/search/NAME``): ``config.yaml``,
``candidates.txt`` (the candidate draw), ``results.jsonl`` (one line per evaluation, appended as
soon as it finishes, so a killed search resumes where it stopped; see
:mod:`speedynas_search.evaluator`), ``incumbent.csv``, ``summary.json``/``summary.md``,
``scores.csv`` (every candidate's scores and truth, for re-analysis), PNG plots, ``tb/`` and
``retrain/`` (top-k retraining, and the labels of ``labels.source=standalone``).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from speedynas_core.config import load_config
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import directory_lock
from speedynas_core.runtime import resolve_device, set_deterministic
from estimators.registry import Estimator, needed_records
from estimators.trajectory import FINE_TUNE_RECORDS
from search_spaces import GroundTruth
from supernet.run_dir import load_supernet

from .candidates import draw_candidates
from .evaluation_runner import EvaluationRun, EvaluationRunner
from .finetune import fine_tune_steps
from .reporter import Reporter
from .results_store import Record
from .retrain import StandaloneLabels, StandaloneTrainer, retrain_top_k, training_keys
from .scorer import Scorer, build_estimators
from .search_config import LimitConfig, SearchConfig, search_context
from .search_dir import search_dir
from .strategies import Fidelity, Strategy

__all__ = ["Search", "check_fidelities", "search_dir"]


def _uses_flops(estimator: Estimator) -> bool:
    """Whether ``estimator`` (or a member of it) reads the candidates' FLOPs."""
    return estimator.name == "flops" or any(_uses_flops(m)
                                            for m in getattr(estimator, "members", ()))


def check_fidelities(scorer: Scorer, strategy: Strategy, limit: LimitConfig,
                     count_flops: bool) -> None:
    """Refuse a fitness that is not listed, learned, or unreadable at its B, FLOPs that are not
    counted, and an open-ended strategy without a limit, before any work."""
    for fidelity in scorer.fidelities:
        estimator = scorer.by_name.get(fidelity.fitness)
        if estimator is None:
            raise SpeedyNASError(f"fitness {fidelity.fitness!r} is not in estimators.names "
                                 f"({', '.join(scorer.by_name)}); list it there")
        if estimator.learned:
            raise SpeedyNASError(f"fitness {fidelity.fitness!r} is fitted on ground truth; "
                                 "a strategy must not see the truth it is judged by")
        estimator.check_budget(fidelity.budget)
        if estimator.needs & FINE_TUNE_RECORDS and fidelity.budget > fidelity.steps:
            raise SpeedyNASError(f"fitness {fidelity.fitness!r} is read at B="
                                 f"{fidelity.budget}, but evaluations fine-tune only "
                                 f"{fidelity.steps} steps (strategy.fitness_budget)")
    flops_users = [e.name for e in scorer.estimators if _uses_flops(e)]
    if "flops" in strategy.objectives:
        flops_users.append("strategy.objectives")
    if flops_users and not count_flops:
        raise SpeedyNASError(f"{', '.join(flops_users)} need(s) FLOPs: set count_flops=true")
    steps = scorer.own_steps
    if not strategy.bounded and not (limit.evaluations or limit.seconds
                                     or (limit.steps is not None and steps > 0)):
        raise SpeedyNASError(
            f"strategy {strategy.name!r} runs until a limit stops it: set limit.evaluations or "
            "limit.seconds" + (" or limit.steps" if steps else
                               " (limit.steps does not bound evaluations without fine-tune "
                               "steps)"))


def check_labels(strategy: Strategy, labels: GroundTruth | None) -> None:
    """A strategy that pays for labels has a source; a source is set only for one."""
    if strategy.uses_labels and labels is None:
        raise SpeedyNASError(f"strategy {strategy.name!r} pays for labels: set labels.source "
                             "(e.g. labels.source=nb201 labels.column=cifar10_valid_val)")
    if labels is not None and not strategy.uses_labels:
        raise SpeedyNASError(f"labels.source is set, but strategy {strategy.name!r} uses no "
                             "labels (strategy.name=guided does); drop the labels section")


def check_label_training(out_dir: Path, cfg: SearchConfig, context: dict[str, Any]) -> None:
    """Refuse to resume a search whose labels were trained (``labels.source=standalone``) with
    other ``retrain`` training settings than ``cfg``'s: its recorded labels would not be
    comparable with new ones (the keys that only choose the top-k may change)."""
    saved, labels = out_dir / "config.yaml", out_dir / "labels.jsonl"
    if not (cfg.labels.trains and saved.exists() and labels.exists()):
        return
    before = load_config(SearchConfig, saved, context=context, trust_plugins=False)
    if not before.labels.trains:
        return  # another label source: the resume check refuses the change of labels.source
    old = training_keys(before.retrain)
    changed = [f"retrain.{key}" for key, value in training_keys(cfg.retrain).items()
               if old.get(key) != value]
    if changed:
        raise SpeedyNASError(f"{', '.join(changed)} changed since the labels in {labels} were "
                             "trained with the old value(s) (labels.source=standalone); set "
                             "them back, or use another name=...")


class Search:
    """One search of a trained supernet; :meth:`run` is resumable."""

    def __init__(self, run_dir: Path, cfg: SearchConfig, env: DistEnv = DistEnv(),
                 device: torch.device | None = None) -> None:
        self.run_dir, self.cfg, self.env = run_dir, cfg, env
        self.out_dir = search_dir(run_dir, cfg)
        self.device = device if device is not None else resolve_device(cfg.device)
        set_deterministic(cfg.deterministic)
        estimators = build_estimators(cfg)
        self.net, self.train_cfg, _ = load_supernet(run_dir, self.device,
                                                    epoch=cfg.supernet_epoch,
                                                    weights=cfg.supernet_weights)
        if self.train_cfg.model.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.candidates = draw_candidates(self.net.space, cfg.candidates)
        self.truth = cfg.ground_truth.create(self.net.space)
        self.labels = (StandaloneLabels(StandaloneTrainer(
                           cfg.retrain, self.train_cfg.data, self.net.space,
                           self.out_dir / "retrain", self.device), env)
                       if cfg.labels.trains else cfg.labels.create(self.net.space))
        self.strategy: Strategy = cfg.strategy.create(self.net.space)
        own = Fidelity(fine_tune_steps(cfg.finetune, needed_records(estimators)),
                       cfg.strategy.fitness or estimators[0].name,
                       max(cfg.finetune.budgets) if cfg.strategy.fitness_budget is None
                       else cfg.strategy.fitness_budget)
        self.scorer = Scorer(estimators, cfg.finetune.budgets, own.steps,
                             self.strategy.fidelities(own), self.net.space)
        check_fidelities(self.scorer, self.strategy, cfg.limit, cfg.count_flops)
        check_labels(self.strategy, self.labels)
        self.runner = EvaluationRunner(cfg, self.train_cfg, run_dir, self.out_dir, self.net,
                                       self.candidates, self.scorer, own, env, self.device)
        self.reporter = Reporter(cfg, self.train_cfg, run_dir, self.out_dir, self.scorer,
                                 self.runner.zero_cost, self.strategy, self.truth, self.labels)

    def run(self) -> dict[str, Any]:
        """Run the strategy (resuming a killed run), then report (and retrain).

        Under torchrun every rank runs the strategy; the evaluations of each batch are sharded
        over the ranks (see :mod:`speedynas_search.evaluator`), so the numbers are those of a
        single-process search; only rank 0 reports. Returns the summary (empty on other ranks).
        Rank 0 holds the search dir's lock throughout (one writer per search)."""
        with (directory_lock(self.out_dir, "the search") if self.env.is_main
              else contextlib.nullcontext()):
            if self.env.is_main:
                check_label_training(self.out_dir, self.cfg, search_context(self.train_cfg))
            run = self.runner.run(self.strategy, self.truth, self.labels)
            last = self.scorer.fidelities[-1]
            final = [r for r in run.records if r.steps == last.steps]
            truths = {r.arch: (self.truth.lookup(r.arch) if self.truth else None)
                      for r in run.records}
            budgets = self.scorer.compared_budgets(final)
            self.scorer.joint_scores(final, truths, sorted(set(budgets) | {last.budget}))
            retrain = (retrain_top_k(final, self.cfg, self.train_cfg, truths,
                                     self.out_dir / "retrain", self.device, self.env)
                       if self.cfg.retrain.enabled else None)
            if not self.env.is_main:
                return {}
            return self.report(final, budgets, truths, retrain, run)

    def report(self, final: list[Record], budgets: list[int], truths: dict[str, float | None],
               retrain: dict[str, Any] | None, run: EvaluationRun) -> dict[str, Any]:
        """The report of the final fidelity's records (see :meth:`Reporter.report`)."""
        return self.reporter.report(final, budgets, truths, retrain, run)
