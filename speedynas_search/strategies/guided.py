"""``guided``: predictor-guided search that spends an explicit label budget (BANANAS, White,
Neiswanger, Savani, AAAI 2021; the predictor-in-the-loop experiments of White, Zela, Ru, Liu,
Hutter, "How Powerful are Performance Predictors in Neural Architecture Search?", NeurIPS 2021).

Two costs, kept apart: an *evaluation* at the search's own fidelity is cheap (zero-cost proxies
at B = 0, or a short fine-tune from the supernet) and gives an arch's features; a *label* is
the expensive truth the user trusts (the ``labels`` section: a benchmark table standing for a
full training, or a user's file) and is counted (:meth:`Evaluations.label`).

1. The first ``pool`` candidates of the draw are evaluated; the first ``initial`` of them (a
   uniform draw) are labelled, or with ``warm_start`` (an estimator, e.g. a label-free rank
   combination of zero-cost proxies) the ``initial`` best of them by its score.
2. Each round a predictor (``predictor``, :mod:`speedynas_predictors`) is fitted on the labelled
   archs' features; ``mutations`` new archs, one-op mutations of the ``parents`` best-labelled
   archs, are evaluated; every evaluated arch not yet labelled gets the acquisition value
   (``acquisition``: ei, ucb, thompson or mean) of its prediction, and the best ``batch`` are
   labelled.
3. Rounds repeat until ``labels`` labels are spent; the incumbent is the best-labelled arch.

With ``objectives`` (one free objective next to the label, e.g. ``pixel3_latency_cifar10``:
:mod:`search_spaces.objectives`), the parents are the labelled archs in order of their
non-dominated front in (label, objective), and each label goes to the arch whose predicted
point (the acquisition's value: ``mean``, ``ucb`` or a ``thompson`` draw) adds most hypervolume
to the labelled front, the points already chosen this round counted as labelled (reference:
the lowest label and the largest objective cost seen).

An objective that is not free is *paid* (``paid_objectives``, e.g. ``pgd@Linf_eps-1.0``, the
accuracy under attack): the training that gives an arch's label also gives its value, so it is
read with the label (:meth:`~speedynas_search.evaluator.Evaluator.label_with`: one label, both
values, recorded in ``labels.jsonl`` and replayed) and is known for the labelled archs only.
For the others a second predictor, of the same kind on the same features, fitted on the
labelled archs' values, predicts it; the acquisition applies to both predictions alike (``mean``:
both means; ``ucb``: both optimistic, mean + 2 std in each objective's better direction;
``thompson``: one independent draw from each), and the hypervolume gain is that of the predicted
point. The parents are the labelled front in (label, labelled value).

Features (``signals``): blocks of :mod:`speedynas_search.signals` (``zero_cost``: every proxy
measured, ``size``: params and FLOPs, ``graph``: the space's graph features, ``encoding``) and
any estimator of the search by name (listed in ``estimators.names``; its score at the
fitness's B, e.g. ``tse`` of a fine-tuned search, or a label-free rank combination such as
``combo(synflow+jacov+flops)``, ranked over everything evaluated so far). A table lookup or a
learned combination is refused: the one is a label, the other is fitted on the truth.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Optional

import numpy as np

from estimators import Estimator, create_estimator
from estimators.combo import parse_inline
from search_spaces import Arch, SearchSpace, table_objective
from search_spaces.objectives import MEASURED
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option
from speedynas_predictors import ACQUISITIONS, Acquisition, acquisition_values, create_predictor

from ..metrics import rank_order
from ..pareto import hypervolume_gains, nondominated_ranks
from ..results_store import Record
from ..signals import BLOCKS, signals_of
from .evolution import fresh_mutant, objective_reader
from .registry import Evaluations, Fidelity, Strategy, register_strategy, require

__all__ = ["Guided"]

Count = Annotated[int, Option(min=1)]


@register_strategy("guided")
class Guided(Strategy):
    """Predictor-guided search with a label budget; see the module docstring."""

    uses_labels = True

    def __init__(self, space: SearchSpace,
                 labels: Annotated[int, Option(min=2, help="labels spent in all (the "
                                                           "budget)")] = 50,
                 initial: Annotated[int, Option(min=2, help="labels of the first candidates "
                                                            "(a uniform draw)")] = 10,
                 pool: Annotated[int, Option(min=2, help="candidates of the draw evaluated "
                                                         "first")] = 100,
                 batch: Annotated[int, Option(min=1, help="labels per round")] = 5,
                 mutations: Annotated[int, Option(min=0, help="new archs evaluated per "
                                                              "round")] = 50,
                 parents: Annotated[int, Option(min=1, help="best-labelled archs mutated")] = 10,
                 acquisition: Annotated[Acquisition, Option(
                     help="ei, ucb (mean + 2 std), thompson or mean")] = "ei",
                 predictor: Annotated[str, Option(
                     help="predictor of speedynas_predictors: gbt, rf, ensemble, or prior "
                          "(the first estimator signal listed is its label-free prior)")] = "rf",
                 warm_start: Annotated[Optional[str], Option(
                     help="label first the pool's best by this estimator (listed in "
                          "estimators.names); null: the draw's first")] = None,
                 signals: Annotated[list[str], Option(
                     help="features: zero_cost, size, graph, encoding, or an estimator "
                          "name")] = ("zero_cost", "size", "graph"),
                 objectives: Annotated[list[str], Option(
                     help="at most one free objective next to the label (a table column, e.g. "
                          "pixel3_latency_cifar10); empty: the label only")] = (),
                 paid_objectives: Annotated[list[str], Option(
                     help="at most one objective paid with each label (a table column read "
                          "when an arch is labelled, e.g. pgd@Linf_eps-1.0) and predicted for "
                          "the others; empty: none")] = (),
                 seed: Annotated[int, Option(min=0, help="seed of mutations, Thompson draws "
                                                         "and the predictor")] = 0) -> None:
        super().__init__(space)
        require(initial <= labels, f"strategy.initial={initial} must be at most "
                                   f"strategy.labels={labels}")
        require(initial <= pool, f"strategy.initial={initial} must be at most "
                                 f"strategy.pool={pool}")
        require(acquisition in ACQUISITIONS, f"strategy.acquisition={acquisition!r} must be one "
                                             f"of {', '.join(ACQUISITIONS)}")
        require(bool(signals) and len(set(signals)) == len(signals),
                f"strategy.signals={list(signals)} must list distinct features")
        create_predictor(predictor)  # an unknown model is refused now, naming the valid ones
        estimator_signals = [name for name in signals if name not in BLOCKS]
        require(predictor != "prior" or bool(estimator_signals),
                "strategy.predictor=prior shrinks towards the first estimator signal listed "
                "(e.g. strategy.signals=[meco, zero_cost, graph]); strategy.signals lists none")
        # the prior's column: estimator signals follow the blocks' columns, in their order
        self._prior_from_end = len(estimator_signals)
        # estimator signal -> whether it is joint (ranked over every evaluation so far)
        self._joint = {name: _checked_signal(name).joint
                       for name in [*signals, *([warm_start] if warm_start else [])]
                       if name not in BLOCKS}
        self.labels, self.initial, self.pool, self.batch = labels, initial, pool, batch
        self.mutations, self.parents, self.seed = mutations, parents, seed
        self.acquisition, self.predictor, self.signals = acquisition, predictor, list(signals)
        self.warm_start = warm_start
        both = set(objectives) & set(paid_objectives)
        require(not both, f"strategy.paid_objectives={list(paid_objectives)} repeats "
                          f"{', '.join(sorted(both))} of strategy.objectives: an objective is "
                          "either free or paid")
        given = f"strategy.objectives={list(objectives)}" + (
            f" with strategy.paid_objectives={list(paid_objectives)}" if paid_objectives else "")
        require(len(objectives) + len(paid_objectives) <= 1,
                f"{given}: guided search takes at most one objective next to the label")
        self.objectives = [*objectives, *paid_objectives]
        require(not self.objectives or acquisition != "ei",
                "strategy.acquisition=ei has no multi-objective form; with strategy.objectives "
                "or strategy.paid_objectives use mean, ucb or thompson")
        self.readers = [objective_reader(space, name) for name in objectives]
        self.paid_objectives = list(paid_objectives)
        self._paid_sign = [_paid_sign(space, name) for name in paid_objectives]

    def evaluation_count(self, pool_size: int) -> int:
        rounds = math.ceil((self.labels - self.initial) / self.batch)
        return self.pool + rounds * self.mutations

    def run(self, evaluations: Evaluations) -> None:
        fidelity = evaluations.fidelity
        rng = np.random.default_rng(self.seed)
        self._block_rows: dict[str, np.ndarray] = {}  # arch -> its block features, once each
        self._paid: dict[str, float] = {}  # labelled arch -> its paid objective, larger better
        records = evaluations.evaluate(evaluations.pool(self.pool), fidelity)
        ordered = records
        if self.warm_start:
            scores = self.signal(evaluations, self.warm_start, records)
            ordered = [records[i] for i in rank_order(scores.tolist())]
        first = list(dict.fromkeys(r.arch for r in ordered))[:self.initial]
        labelled = self.label(evaluations, first)
        for round_ in range(math.ceil((self.labels - self.initial) / self.batch)):
            best = self.parents_of(records, labelled)
            children: list[Arch] = []
            for i in range(self.mutations):
                parent = self.space.parse(best[i % len(best)])
                children.append(fresh_mutant(
                    self.space, parent, rng,
                    lambda a: evaluations.is_new(a, fidelity) and a not in children))
            if children:
                records += evaluations.evaluate(children, fidelity)
            open_records = list({r.arch: r for r in records if r.arch not in labelled}.values())
            if not open_records:
                return
            order = self.choose(evaluations, records, labelled, open_records, rng, round_)
            take = min(self.batch, self.labels - len(labelled))
            archs = [open_records[i].arch for i in order[:take]]
            labelled.update(self.label(evaluations, archs))

    def label(self, evaluations: Evaluations, archs: Sequence[str]) -> dict[str, float]:
        """Arch -> label of each of ``archs``; a paid objective's values come with the labels
        (kept signed, larger better)."""
        parsed = [self.space.parse(a) for a in archs]
        if not self.paid_objectives:
            return dict(zip(archs, evaluations.label(parsed)))
        labels, (paid,) = evaluations.label_with(parsed, self.paid_objectives)
        self._paid.update((a, self._paid_sign[0] * v) for a, v in zip(archs, paid))
        return dict(zip(archs, labels))

    def labelled_objective(self, records: Sequence[Record], archs: Sequence[str]) -> list[float]:
        """The objective of each labelled arch, larger better: a free one read from its record,
        a paid one as labelled."""
        if self.paid_objectives:
            return [self._paid[a] for a in archs]
        by_arch = {r.arch: r for r in records}
        return [self.readers[0](by_arch[a]) for a in archs]

    def parents_of(self, records: Sequence[Record], labelled: dict[str, float]) -> list[str]:
        """The ``parents`` best-labelled archs: by label, or with an objective by the labelled
        front they lie on, then label."""
        finite = [a for a, v in labelled.items() if math.isfinite(v)]
        if not finite:
            return list(labelled)
        if not self.objectives:
            return sorted(finite, key=lambda a: -labelled[a])[:self.parents]
        fronts = nondominated_ranks([[labelled[a], value] for a, value in zip(
            finite, self.labelled_objective(records, finite))])
        order = sorted(range(len(finite)), key=lambda i: (fronts[i], -labelled[finite[i]]))
        return [finite[i] for i in order[:self.parents]]

    def choose(self, evaluations: Evaluations, records: Sequence[Record],
               labelled: dict[str, float], open_records: Sequence[Record],
               rng: np.random.Generator, round_: int) -> list[int]:
        """Indices into ``open_records`` (distinct archs), best acquisition value first."""
        fit = list({r.arch: r for r in records
                    if r.arch in labelled and math.isfinite(labelled[r.arch])}.values())
        if len(fit) < 2:  # nothing to learn from yet (the source knew no label): explore
            return [int(i) for i in rng.permutation(len(open_records))]
        if self.paid_objectives:  # the paid objective is learned from the labelled values
            fit = [r for r in fit if math.isfinite(self._paid[r.arch])]
            if len(fit) < 2:
                return [int(i) for i in rng.permutation(len(open_records))]
        x = self.features(evaluations, [*fit, *open_records])
        values = self.predicted(x, len(fit), [labelled[r.arch] for r in fit], rng, round_)
        order = sorted(range(len(open_records)), key=lambda i: (-values[i], i))
        if not self.objectives:
            return order
        fit_archs = [r.arch for r in fit]
        if self.paid_objectives:
            objective = self.predicted(x, len(fit), [self._paid[a] for a in fit_archs], rng,
                                       round_)
        else:
            objective = np.array([self.readers[0](r) for r in open_records])
        return self.by_hypervolume([labelled[a] for a in fit_archs],
                                   [-v for v in self.labelled_objective(records, fit_archs)],
                                   values, -objective, order)

    def predicted(self, x: np.ndarray, fitted: int, targets: Sequence[float],
                  rng: np.random.Generator, round_: int) -> np.ndarray:
        """The acquisition value of rows ``x[fitted:]`` by a predictor fitted on the first
        ``fitted`` rows' ``targets``."""
        prior = {"prior": x.shape[1] - self._prior_from_end} if self.predictor == "prior" else {}
        model = create_predictor(self.predictor, seed=self.seed + round_, **prior)
        model.fit(x[:fitted], list(targets))
        return acquisition_values(self.acquisition, model.predict(x[fitted:]), max(targets),
                                  rng)

    def by_hypervolume(self, labels: Sequence[float], costs: Sequence[float],
                       values: np.ndarray, open_costs: np.ndarray,
                       order: list[int]) -> list[int]:
        """``batch`` open records, each adding most hypervolume in (label, objective as a cost)
        to the labelled front (``labels``, ``costs``) and the points chosen before it (at
        ``values``, ``open_costs``: predicted or free); then the rest in ``order``."""
        finite = [c for c in [*costs, *open_costs.tolist()] if math.isfinite(c)]
        reference = (min(labels), max(finite))
        scores, front_costs = list(labels), list(costs)
        chosen: list[int] = []
        for _ in range(min(self.batch, len(values))):
            gains = hypervolume_gains(scores, front_costs, reference, values, open_costs)
            gains[chosen] = 0.0
            if gains.max() <= 0:
                break
            pick = int(np.argmax(gains))  # ties: the first open record
            chosen.append(pick)
            scores.append(float(values[pick]))
            front_costs.append(float(open_costs[pick]))
        return chosen + [i for i in order if i not in chosen]

    def features(self, evaluations: Evaluations, records: Sequence[Record]) -> np.ndarray:
        """One row per record: the configured signals (the blocks computed once per arch)."""
        blocks = [s for s in self.signals if s in BLOCKS]
        new = [r for r in records if r.arch not in self._block_rows]
        if blocks and new:
            signals = signals_of([r.to_json() for r in new], self.space, blocks)
            missing = [b for b in blocks if b not in signals.blocks]
            if missing:
                raise SpeedyNASError(f"strategy.signals lists {', '.join(missing)}, which the "
                                     f"{self.space.name} space cannot give; drop it")
            self._block_rows.update(zip((r.arch for r in new), signals.matrix(blocks)))
        columns = [np.array([self._block_rows[r.arch] for r in records])] if blocks else []
        columns += [self.signal(evaluations, name, records)[:, None]
                    for name in self.signals if name not in BLOCKS]
        x = np.column_stack(columns)
        if x.shape[1] == 0:
            raise SpeedyNASError("strategy.signals gives no feature here (no zero-cost proxy "
                                 "measured?); add graph or size, or list zero-cost estimators")
        return x

    def signal(self, evaluations: Evaluations, name: str,
               records: Sequence[Record]) -> np.ndarray:
        """Estimator ``name``'s score of each record at the search's fidelity (a joint one,
        such as a rank combination, ranked over every evaluation so far)."""
        fidelity = evaluations.fidelity
        if self._joint[name]:
            scores = evaluations.fitness(Fidelity(fidelity.steps, name, fidelity.budget))
            return np.array([scores[r.index] for r in records], dtype=float)
        return np.array([r.score(name, fidelity.budget) for r in records], dtype=float)

    def describe(self) -> str:
        warm = f" by {self.warm_start}" if self.warm_start else ""
        paid = " (paid with the label, predicted)" if self.paid_objectives else ""
        objectives = f", objective {self.objectives[0]}{paid}" if self.objectives else ""
        return (f"guided ({self.labels} labels, {self.initial} initial{warm} of a pool of "
                f"{self.pool}, {self.batch} per round from {self.mutations} mutations of the "
                f"best {self.parents}; {self.predictor} predictor, {self.acquisition} "
                f"acquisition on {'+'.join(self.signals)}{objectives}; seed {self.seed})")


def _paid_sign(space: SearchSpace, name: str) -> float:
    """1 for a paid objective that is maximised, -1 for one that is minimised; a measured cost
    or an unknown name is refused, naming the key."""
    if name in MEASURED:
        raise SpeedyNASError(f"strategy.paid_objectives: {name!r} is measured by the search for "
                             "every arch, free; list it in strategy.objectives")
    try:
        return 1.0 if table_objective(space, name).maximise else -1.0
    except SpeedyNASError as error:
        raise SpeedyNASError(f"strategy.paid_objectives: {error}") from None


def _estimator(name: str) -> Estimator:
    """The estimator a signal names (an inline combination such as ``combo(a+b)`` too)."""
    inline = parse_inline(name)
    return create_estimator(name) if inline is None else create_estimator(
        inline[0], members=inline[1])


def _checked_signal(name: str) -> Estimator:
    """The estimator listed as a signal: it exists and is neither a table lookup (a label for
    free) nor learned (fitted on the truth)."""
    try:
        estimator = _estimator(name)
    except SpeedyNASError:
        raise SpeedyNASError(f"strategy.signals: {name!r} is neither a block "
                             f"({', '.join(BLOCKS)}) nor a registered estimator") from None
    if estimator.lookup:
        raise SpeedyNASError(f"strategy.signals: {name!r} is a table lookup, the truth itself; "
                             "labels come through the labels section and are counted")
    if estimator.learned:
        raise SpeedyNASError(f"strategy.signals: {name!r} is fitted on the truth; list its "
                             "members instead")
    return estimator
