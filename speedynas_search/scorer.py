"""The estimators of a search and the scores they give its records: each per-candidate
estimator's score of a record at the B values its fine-tune reached, and the joint (rank
combination) and learned estimators' scores of a set of records."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from speedynas_core.errors import SpeedyNASError
from estimators.combo import inline_name, parse_inline
from estimators.registry import Estimator, create_estimator, needed_records
from estimators.trajectory import Candidate, Trajectory
from search_spaces import SearchSpace

from .results_store import Record, Scores
from .search_config import EstimatorsConfig, SearchConfig, base_name
from .strategies import Fidelity


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
    """The configured estimators, checked against every B of ``finetune.budgets`` (and learned
    ones against the ground truth they fit on) before any work."""
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


class Scorer:
    """Scores records with ``estimators``. ``budgets`` is ``finetune.budgets``, ``own_steps`` the
    search's own fine-tune (max(B), 0 without one), ``fidelities`` the strategy's; the parsed
    trajectory and candidate of each record are kept (a joint fitness re-ranks every record
    after every batch)."""

    def __init__(self, estimators: Sequence[Estimator], budgets: Sequence[int], own_steps: int,
                 fidelities: Sequence[Fidelity], space: SearchSpace) -> None:
        self.estimators, self.budgets, self.own_steps = list(estimators), list(budgets), own_steps
        self.fidelities, self.space = list(fidelities), space
        self.by_name = {e.name: e for e in self.estimators}
        self.needs = needed_records(self.estimators)
        self._wants_graph = any(getattr(e, "graph", False) for e in self.estimators)
        self._parsed: dict[int, tuple[Trajectory, Candidate]] = {}

    def budgets_at(self, steps: int) -> list[int]:
        """The B values a record of ``steps`` fine-tune steps is scored at: ``finetune.budgets``
        for the search's own fine-tune, else those up to ``steps`` and ``steps``; with the B of
        every fidelity at those steps."""
        own = {f.budget for f in self.fidelities if f.steps == steps}
        if steps == self.own_steps:
            return sorted(set(self.budgets) | own)
        return sorted({b for b in self.budgets if b <= steps} | {steps} | own)

    def compared_budgets(self, final: Sequence[Record]) -> list[int]:
        """The B values the final fidelity's records are compared at: ``finetune.budgets`` for
        the search's own fine-tune, else those every per-candidate estimator scored."""
        steps = final[0].steps
        if steps == self.own_steps:
            return list(self.budgets)
        single = [e.name for e in self.estimators if not e.joint]
        return [b for b in self.budgets_at(steps)
                if all(str(b) in r.scores.get(name, {}) for r in final for name in single)]

    def scores(self, trajectory: Trajectory, candidate: Candidate, steps: int) -> Scores:
        """Every per-candidate estimator's score at every B of a record of ``steps`` fine-tune
        steps (at B values beyond ``finetune.budgets``, where it can score)."""
        configured = set(self.budgets) if steps == self.own_steps else set()
        budgets = self.budgets_at(steps)
        return {e.name: {str(b): e.score(trajectory, candidate, b) for b in budgets
                         if b in configured
                         or (b >= e.min_budget() and not e.missing(trajectory, b))}
                for e in self.estimators if not e.joint}

    def rescore(self, records: Sequence[Record], out_dir: Path) -> None:
        """Score finished records (of the search in ``out_dir``) from their stored trajectories
        (the estimators may have changed since they were fine-tuned)."""
        for record, trajectory, candidate in zip(records, *self.parsed(records)):
            try:
                record.scores = self.scores(trajectory, candidate, record.steps)
            except SpeedyNASError as error:
                raise SpeedyNASError(f"{error} (the finished candidates in {out_dir} were "
                                     "fine-tuned for other estimators; use another name=...)"
                                     ) from None

    def parsed(self, records: Sequence[Record]) -> tuple[list[Trajectory], list[Candidate]]:
        """The trajectories and candidates (with their arch encodings and graph features) of
        ``records``, each parsed once."""
        for r in records:
            if r.index not in self._parsed:
                candidate = Candidate(r.arch, r.params, r.flops, self.encoding(r.arch),
                                      self.graph(r.arch))
                self._parsed[r.index] = (Trajectory.from_dict(r.trajectory), candidate)
        pairs = [self._parsed[r.index] for r in records]
        return [t for t, _ in pairs], [c for _, c in pairs]

    def encoding(self, arch: str) -> tuple[float, ...] | None:
        """The search space's encoding of ``arch`` (features of learned combinations)."""
        code = self.space.encode(self.space.parse(arch))
        return None if code is None else tuple(float(v) for v in code)

    def graph(self, arch: str) -> tuple[float, ...] | None:
        """The search space's graph features of ``arch`` (``None``: no estimator uses them, or
        the space defines none)."""
        if not self._wants_graph:
            return None
        try:
            features = self.space.graph_features(self.space.parse(arch))
        except NotImplementedError:
            return None
        return tuple(float(v) for v in features.values())

    def joint_fitness(self, name: str, records: Sequence[Record], budget: int) -> list[float]:
        """A joint estimator's scores of ``records`` at ``budget`` (a strategy's fitness)."""
        return self.by_name[name].score_set(*self.parsed(records), budget)

    def joint_scores(self, records: Sequence[Record], truths: Mapping[str, float | None],
                     budgets: Sequence[int]) -> None:
        """Add the scores of the estimators that rank the whole set (e.g. rank combinations);
        only ``learned`` ones see ``truths``."""
        joint = [e for e in self.estimators if e.joint]
        if not joint:
            return
        trajectories, candidates = self.parsed(records)
        for estimator in joint:
            for budget in budgets:
                values = estimator.score_set(trajectories, candidates, budget,
                                             truths if estimator.learned else None)
                for record, value in zip(records, values):
                    record.scores.setdefault(estimator.name, {})[str(budget)] = value
