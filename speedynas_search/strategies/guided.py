"""``guided``: predictor-guided search that spends an explicit label budget (BANANAS, White,
Neiswanger, Savani, AAAI 2021; the predictor-in-the-loop experiments of White, Zela, Ru, Liu,
Hutter, "How Powerful are Performance Predictors in Neural Architecture Search?", NeurIPS 2021).

Two costs, kept apart: an *evaluation* at the search's own fidelity is cheap (zero-cost proxies
at B = 0, or a short fine-tune from the supernet) and gives an arch's features; a *label* is
the expensive truth the user trusts (the ``labels`` section: a benchmark table standing for a
full training, or a user's file) and is counted (:meth:`Evaluations.label`).

1. The first ``pool`` candidates of the draw are evaluated; the first ``initial`` of them (a
   uniform draw) are labelled.
2. Each round a predictor (``predictor``, :mod:`speedynas_predictors`) is fitted on the labelled
   archs' features; ``mutations`` new archs, one-op mutations of the ``parents`` best-labelled
   archs, are evaluated; every evaluated arch not yet labelled gets the acquisition value
   (``acquisition``: ei, ucb, thompson or mean) of its prediction, and the best ``batch`` are
   labelled.
3. Rounds repeat until ``labels`` labels are spent; the incumbent is the best-labelled arch.

Features (``signals``): blocks of :mod:`speedynas_search.signals` (``zero_cost``: every proxy
measured, ``size``: params and FLOPs, ``graph``: the space's graph features, ``encoding``) and
any per-candidate estimator of the search by name (its score at the fitness's B, e.g. ``tse``
of a fine-tuned search). A table lookup is refused: it is a label, not a cheap signal.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np

from estimators import create_estimator
from search_spaces import Arch, SearchSpace
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option
from speedynas_predictors import ACQUISITIONS, Acquisition, acquisition_values, create_predictor

from ..results_store import Record
from ..signals import BLOCKS, signals_of
from .evolution import fresh_mutant
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
                     help="predictor of speedynas_predictors: gbt, rf or ensemble")] = "rf",
                 signals: Annotated[list[str], Option(
                     help="features: zero_cost, size, graph, encoding, or an estimator "
                          "name")] = ("zero_cost", "size", "graph"),
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
        for name in signals:
            if name not in BLOCKS:
                _check_estimator_signal(name)
        self.labels, self.initial, self.pool, self.batch = labels, initial, pool, batch
        self.mutations, self.parents, self.seed = mutations, parents, seed
        self.acquisition, self.predictor, self.signals = acquisition, predictor, list(signals)

    def evaluation_count(self, pool_size: int) -> int:
        rounds = math.ceil((self.labels - self.initial) / self.batch)
        return self.pool + rounds * self.mutations

    def run(self, evaluations: Evaluations) -> None:
        fidelity = evaluations.fidelity
        rng = np.random.default_rng(self.seed)
        records = evaluations.evaluate(evaluations.pool(self.pool), fidelity)
        first = list(dict.fromkeys(r.arch for r in records))[:self.initial]
        labelled = dict(zip(first, evaluations.label([self.space.parse(a) for a in first])))
        for round_ in range(math.ceil((self.labels - self.initial) / self.batch)):
            best = sorted((a for a, v in labelled.items() if math.isfinite(v)),
                          key=lambda a: -labelled[a])[:self.parents] or list(labelled)
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
            order = self.choose(records, labelled, open_records, fidelity, rng, round_)
            take = min(self.batch, self.labels - len(labelled))
            archs = [open_records[i].arch for i in order[:take]]
            labelled.update(zip(archs, evaluations.label([self.space.parse(a) for a in archs])))

    def choose(self, records: Sequence[Record], labelled: dict[str, float],
               open_records: Sequence[Record], fidelity: Fidelity, rng: np.random.Generator,
               round_: int) -> list[int]:
        """Indices into ``open_records`` (distinct archs), best acquisition value first."""
        fit = list({r.arch: r for r in records
                    if r.arch in labelled and math.isfinite(labelled[r.arch])}.values())
        if len(fit) < 2:  # nothing to learn from yet (the source knew no label): explore
            return [int(i) for i in rng.permutation(len(open_records))]
        x = self.features([*fit, *open_records], fidelity)
        model = create_predictor(self.predictor, seed=self.seed + round_)
        model.fit(x[:len(fit)], [labelled[r.arch] for r in fit])
        values = acquisition_values(self.acquisition, model.predict(x[len(fit):]),
                                    max(labelled[r.arch] for r in fit), rng)
        return sorted(range(len(open_records)), key=lambda i: (-values[i], i))

    def features(self, records: Sequence[Record], fidelity: Fidelity) -> np.ndarray:
        """One row per record: the configured signals."""
        blocks = [s for s in self.signals if s in BLOCKS]
        signals = signals_of([r.to_json() for r in records], self.space, blocks)
        missing = [b for b in blocks if b not in signals.blocks]
        if missing:
            raise SpeedyNASError(f"strategy.signals lists {', '.join(missing)}, which the "
                                 f"{self.space.name} space cannot give; drop it")
        columns = [signals.matrix(blocks)] if blocks else []
        for name in (s for s in self.signals if s not in BLOCKS):
            columns.append(np.array([[r.score(name, fidelity.budget)] for r in records]))
        x = np.column_stack(columns)
        if x.shape[1] == 0:
            raise SpeedyNASError("strategy.signals gives no feature here (no zero-cost proxy "
                                 "measured?); add graph or size, or list zero-cost estimators")
        return x

    def describe(self) -> str:
        return (f"guided ({self.labels} labels, {self.initial} initial of a pool of "
                f"{self.pool}, {self.batch} per round from {self.mutations} mutations of the "
                f"best {self.parents}; {self.predictor} predictor, {self.acquisition} "
                f"acquisition on {'+'.join(self.signals)}; seed {self.seed})")


def _check_estimator_signal(name: str) -> None:
    """An estimator listed as a signal exists, scores one candidate at a time, and is not a
    table lookup (that would be a label for free)."""
    try:
        estimator = create_estimator(name)
    except SpeedyNASError:
        raise SpeedyNASError(f"strategy.signals: {name!r} is neither a block "
                             f"({', '.join(BLOCKS)}) nor a registered estimator") from None
    if estimator.lookup:
        raise SpeedyNASError(f"strategy.signals: {name!r} is a table lookup, the truth itself; "
                             "labels come through the labels section and are counted")
    if estimator.joint:
        raise SpeedyNASError(f"strategy.signals: {name!r} scores whole sets; list its members")
