"""The search-strategy interface and its registry.

A strategy decides which architectures are evaluated, and at which fidelity, by calling
:meth:`Evaluations.evaluate` with a batch of archs (a generation's children, a neighbourhood, a
rung's chunk); a batch's evaluations run in parallel under torchrun. It reads the results back
through :meth:`Evaluations.fitness`. When a limit of the search (``limit.*``) is reached,
``evaluate`` raises :class:`LimitReached` and the strategy ends there. A strategy must be a
deterministic function of its options and the scores it is given: a killed search is resumed by
running the strategy again from the start, with every evaluation already in ``results.jsonl``
answered from the file.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from speedynas_core.errors import SpeedyNASError
from speedynas_core.registry import Registry, create_checked
from search_spaces import Arch, SearchSpace

from ..results_store import Record

__all__ = ["STRATEGIES", "Evaluations", "Fidelity", "LimitReached", "Strategy",
           "create_strategy", "register_strategy"]


class LimitReached(Exception):
    """Raised by :meth:`Evaluations.evaluate` once a limit of the search is reached."""


class Fidelity(NamedTuple):
    """How an evaluation is made and judged: ``steps`` fine-tune steps from the inherited
    weights (0: none), then estimator ``fitness`` read at budget ``budget`` (<= ``steps``,
    or 0 for estimators that need no fine-tune)."""

    steps: int
    fitness: str
    budget: int

    def describe(self) -> str:
        return f"{self.fitness} at B={self.budget} ({self.steps} fine-tune steps)"


class Evaluations(Protocol):
    """What a strategy sees of the search (implemented by ``speedynas_search.evaluator``)."""

    space: SearchSpace
    fidelity: Fidelity  # the search's own fidelity: its fine-tune steps and fitness

    def pool(self, count: int | None = None) -> list[Arch]:
        """The first ``count`` archs of the configured candidate draw (``None``: all)."""

    def evaluate(self, archs: Sequence[Arch], fidelity: Fidelity) -> list[Record]:
        """Evaluate ``archs`` at ``fidelity`` (one record each, in order); raises
        :class:`LimitReached` once a limit is reached (after recording what fitted)."""

    def label(self, archs: Sequence[Arch]) -> list[float]:
        """The label of each arch from the configured source (the ``labels`` section; NaN when
        it does not know one), each counted as one label the search spends."""

    def label_with(self, archs: Sequence[Arch], objectives: Sequence[str]
                   ) -> tuple[list[float], list[list[float]]]:
        """:meth:`label` of each arch and, paid with it (read only for labelled archs, one label
        counted per arch), the value of each of ``objectives`` (table columns): (labels, one
        list of values per objective)."""

    def fitness(self, fidelity: Fidelity) -> Mapping[int, float]:
        """Record index -> fitness at ``fidelity`` of everything evaluated so far at least that
        well (a joint estimator, such as a rank combination, is re-ranked over all of them); a
        read-only snapshot, taken in O(1) for a per-candidate fitness (ask again after a
        batch: it holds what was evaluated when it was asked for)."""

    def is_new(self, arch: Arch, fidelity: Fidelity) -> bool:
        """Whether ``arch`` has not been evaluated at ``fidelity`` yet."""


class Strategy(ABC):
    """Proposes the archs a search evaluates; options are its factory's keyword parameters."""

    name: str = ""
    bounded: bool = True  # False: it runs until a limit stops it (one must be set)
    objectives: Sequence[str] = ()  # optimised next to the fitness (params, flops, table columns)
    uses_labels: bool = False  # True: it pays for labels (Evaluations.label)

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    @abstractmethod
    def run(self, evaluations: Evaluations) -> None:
        """Evaluate archs until the strategy is done or :class:`LimitReached` is raised."""

    def fidelities(self, default: Fidelity) -> list[Fidelity]:
        """The fidelities the strategy evaluates at, cheapest first (``default``: the search's
        fine-tune and fitness); the last one judges the final incumbent."""
        return [default]

    def evaluation_count(self, pool_size: int) -> int | None:
        """How many evaluations the strategy makes from a candidate draw of ``pool_size`` when
        no limit stops it (``None``: it cannot say in advance)."""
        return None

    def describe(self) -> str:
        return self.name


STRATEGIES: Registry[Strategy] = Registry("strategy", fixed=("space",))


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator registering a :class:`Strategy` subclass as ``name``."""

    def decorate(cls: type[Strategy]) -> type[Strategy]:
        cls.name = name
        STRATEGIES.register(name)(cls)
        return cls

    return decorate


def create_strategy(name: str, space: SearchSpace, **options: Any) -> Strategy:
    """The strategy registered as ``name`` for ``space``; bad names and options are named."""
    return create_checked(STRATEGIES, name, {"space": space, **options})


def require(condition: bool, message: str) -> None:
    """Refuse a strategy option combination with a one-line message."""
    if not condition:
        raise SpeedyNASError(message)
