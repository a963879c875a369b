"""The estimator interface and its registry.

An estimator turns one fine-tune :class:`~estimators.trajectory.Trajectory` (plus the
candidate's size) into a score at budget B; larger is better. Adding one is a small class::

    @register_estimator("neg_last_val")
    class NegLastVal(Estimator):
        needs = frozenset({"val_losses"})

        def compute(self, trajectory, candidate, budget):
            return -trajectory.val_losses[budget - 1]

or a function (its keyword-only parameters become options)::

    @register_estimator("neg_last_val", needs={"val_losses"})
    def neg_last_val(trajectory, candidate, budget, *, scale=1.0):
        return -scale * trajectory.val_losses[budget - 1]

Callers use :meth:`Estimator.score` (one candidate) or :meth:`Estimator.score_set` (a candidate
set; joint estimators such as rank combinations override it). ``score`` checks the budget and
that the trajectory holds everything in ``needs`` before calling ``compute``, so ``compute`` may
index freely. ``needs`` also tells the fine-tune loop what to record (see :func:`needed_records`).

Three attributes describe how an estimator is driven (the search decides by them, never by name):

- ``joint``: scores exist only for a whole candidate set (:meth:`Estimator.score_set`, called
  once every candidate is done); :meth:`Estimator.score` refuses.
- ``learned``: ``score_set`` is given ``truths`` (arch -> true accuracy) and fits on some of
  them; the candidates it was fitted on get NaN and are left out of its metrics.
- ``lookup``: the score is read from a benchmark table (a tabular-benchmark stand-in for an
  estimator, to try search strategies in seconds); every output marks it as a table lookup.
- ``"zero_cost"`` in ``needs``: :meth:`Estimator.measure` is run on the candidate's network
  before any update and the value stored in ``Trajectory.zero_cost[name]``;
  :meth:`Estimator.measurers` lists whose ``measure`` an estimator relies on (a combination
  relies on its members') and :func:`zero_cost_measurers` collects them for a search.
"""
from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from speedynas_core.errors import SpeedyNASError
from speedynas_core.registry import Registry, create_checked

from .trajectory import RECORDS, Candidate, Trajectory

if TYPE_CHECKING:
    import torch
    from torch import nn

T = TypeVar("T")
#: One minibatch: normalised images and their labels.
Batch = tuple["torch.Tensor", "torch.Tensor"]

__all__ = [
    "ESTIMATORS", "Batch", "Estimator", "FunctionEstimator", "create_estimator",
    "list_estimators", "needed_records", "register_estimator", "zero_cost_measurers",
]


class Estimator:
    """Scores a candidate from its fine-tune trajectory; larger is better."""

    name: str = ""
    needs: frozenset[str] = frozenset()
    joint: bool = False  # True: scores need the whole candidate set (only score_set works)
    learned: bool = False  # True: score_set fits on ``truths``; fitted candidates score NaN
    lookup: bool = False  # True: reads a benchmark table, not an estimate (marked in outputs)

    @property
    def options(self) -> dict[str, Any]:
        """The estimator's options with their effective values (for report headers)."""
        return {}

    def describe(self) -> str:
        """``name(option=value, ...)``."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}({opts})" if opts else self.name

    def min_budget(self) -> int:
        """The smallest budget this estimator can score (1 when it reads any loss)."""
        return 1 if self.needs & {"train_losses", "val_losses"} else 0

    def check_budget(self, budget: int) -> None:
        """Raise :class:`SpeedyNASError` unless ``budget`` is usable (call it before a search)."""
        if (isinstance(budget, bool) or not isinstance(budget, numbers.Integral)
                or budget < self.min_budget()):
            raise SpeedyNASError(f"estimator {self.name!r}: budget {budget!r} must be an integer "
                                 f">= {self.min_budget()}")

    def score(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        """The score at ``budget`` updates; errors name the estimator, budget and missing record."""
        self.check_budget(budget)
        problems = self.missing(trajectory, budget)
        if problems:
            raise SpeedyNASError(f"estimator {self.name!r} cannot score B={budget} for "
                                 f"{candidate.arch}: " + "; ".join(problems))
        return float(self.compute(trajectory, candidate, budget))

    def missing(self, trajectory: Trajectory, budget: int) -> list[str]:
        """Why ``trajectory`` cannot be scored at ``budget`` (empty when it can)."""
        return trajectory.missing(self.needs, budget)

    def score_set(self, trajectories: Sequence[Trajectory], candidates: Sequence[Candidate],
                  budget: int, truths: Mapping[str, float | None] | None = None) -> list[float]:
        """Scores of a whole candidate set (default: each scored alone).

        ``truths`` (arch -> true accuracy, ``None`` when unknown) is given only to ``learned``
        estimators; the others must not look at it.
        """
        if len(trajectories) != len(candidates):
            raise ValueError(f"{len(trajectories)} trajectories for {len(candidates)} candidates")
        return [self.score(t, c, budget) for t, c in zip(trajectories, candidates)]

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        """The score itself; the records in ``needs`` are known to cover ``budget``."""
        raise NotImplementedError(f"estimator {self.name!r} scores only whole sets (score_set)")

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> float:
        """Zero-cost estimators: the value of candidate network ``net`` (a private copy the
        method may modify, in train mode) on the fixed train ``batches``."""
        raise NotImplementedError(f"estimator {self.name!r} measures no network")

    def measurers(self) -> list[Estimator]:
        """The estimators whose :meth:`measure` this one needs run on every candidate."""
        return [self] if "zero_cost" in self.needs else []

    def __repr__(self) -> str:
        return f"<estimator {self.describe()}>"


class FunctionEstimator(Estimator):
    """An estimator made from a plain function; its keyword-only parameters are the options."""

    function: Callable[..., float]

    def __init__(self, **options: Any) -> None:
        self._options = options

    @property
    def options(self) -> dict[str, Any]:
        defaults = {p.name: p.default for p in inspect.signature(self.function).parameters.values()
                    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
        return {**defaults, **self._options}

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return self.function(trajectory, candidate, budget, **self._options)


ESTIMATORS: Registry[Estimator] = Registry("estimator")


def _check_needs(name: str, needs: Iterable[str]) -> frozenset[str]:
    needs = frozenset(needs)
    unknown = needs - RECORDS
    if unknown:
        raise ValueError(f"estimator {name!r} needs unknown records {sorted(unknown)}; "
                         f"known: {sorted(RECORDS)}")
    return needs


def register_estimator(name: str, needs: Iterable[str] | None = None) -> Callable[[T], T]:
    """Decorator registering an :class:`Estimator` subclass or a scoring function as ``name``.

    A function is called as ``fn(trajectory, candidate, budget, **options)`` and must be given
    ``needs``; for a class, ``needs`` (if given) overrides the class attribute.
    """

    def decorate(target: T) -> T:
        if isinstance(target, type) and issubclass(target, Estimator):
            target.name = name
            target.needs = _check_needs(name, target.needs if needs is None else needs)
            ESTIMATORS.register(name)(target)
            return target
        if not callable(target) or needs is None:
            raise TypeError(f"register_estimator({name!r}) decorates an Estimator subclass, or a "
                            "function when given needs=...")
        keyword_only = [p for p in inspect.signature(target).parameters.values()
                        if p.kind is p.KEYWORD_ONLY]
        cls = type(f"{name}_estimator", (FunctionEstimator,), {
            "name": name, "needs": _check_needs(name, needs), "function": staticmethod(target),
            "__doc__": target.__doc__, "__signature__": inspect.Signature(keyword_only)})
        ESTIMATORS.register(name)(cls)
        return target

    return decorate


def create_estimator(name: str, **options: Any) -> Estimator:
    """The estimator registered as ``name`` with ``options``; bad names/options are named."""
    return create_checked(ESTIMATORS, name, options)


def list_estimators() -> list[str]:
    """Registered estimator names, sorted."""
    return ESTIMATORS.names()


def needed_records(estimators: Iterable[Estimator]) -> frozenset[str]:
    """Everything the fine-tune must record for ``estimators`` (empty: no fine-tune at all;
    only ``val_acc_inherited``: one evaluation of the inherited weights, no updates)."""
    out: frozenset[str] = frozenset()
    for estimator in estimators:
        out |= estimator.needs
    return out


def zero_cost_measurers(estimators: Iterable[Estimator]) -> list[Estimator]:
    """Every estimator whose :meth:`Estimator.measure` must run on each candidate, once per name."""
    out: dict[str, Estimator] = {}
    for estimator in estimators:
        for measurer in estimator.measurers():
            out.setdefault(measurer.name, measurer)
    return list(out.values())
