"""The interfaces every search space and every ground-truth source implement, and the error
raised for bad architecture text."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Hashable, Iterator, Protocol

import numpy as np

from speedynas_core.errors import SpeedyNASError


class ArchParseError(SpeedyNASError):
    """Architecture text that does not parse; the message names the bad token and valid choices."""


class Arch(Hashable, Protocol):
    """An immutable, hashable architecture value; ``str(arch)`` is its canonical text."""

    space_name: str

    def __str__(self) -> str: ...


class GroundTruth(ABC):
    """A source of true accuracies."""

    name: str = ""

    @abstractmethod
    def lookup(self, arch: Arch | str) -> float | None:
        """The true accuracy of ``arch``, or ``None`` when the source does not know it."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the source and its settings."""

    def lookup_many(self, archs: Iterable[Arch | str]) -> list[float | None]:
        """:meth:`lookup` of each arch, in order (sources that batch work override this)."""
        return [self.lookup(arch) for arch in archs]

    def space_values(self) -> Sequence[float] | None:
        """Every known true value in the whole search space, when the source has them all
        (reports then place an arch among the space); ``None`` when it does not."""
        return None

    def space_points(self, cost: str) -> tuple[Sequence[float], Sequence[float]] | None:
        """(true values, ``cost`` values) of every arch of the space, when the source knows
        both (reports then draw the space's true Pareto front); ``None`` when it does not."""
        return None


class SearchSpace(ABC):
    """A set of architectures: parse/format text, sample, mutate."""

    name: str
    ops: tuple[str, ...]

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """The arch written as ``text``; raises :class:`ArchParseError` on bad text."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """One architecture drawn uniformly (as the space defines uniform)."""

    @abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A valid architecture that differs from ``arch`` in exactly one choice."""

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every valid architecture that differs from ``arch`` in exactly one choice (the
        one-mutation neighbourhood, in a fixed order); local search needs it."""
        raise NotImplementedError(f"the {self.name} space defines no one-mutation "
                                  "neighbourhood (SearchSpace.neighbours)")

    def graph_features(self, arch: Arch) -> dict[str, float]:
        """Named graph features of ``arch``'s cell(s): op counts, paths per op, node degrees,
        dead edges (:mod:`search_spaces.graph_features`); the same keys in the same order for
        every arch of the space."""
        raise NotImplementedError(f"the {self.name} space defines no graph features "
                                  "(SearchSpace.graph_features)")

    def encode(self, arch: Arch) -> np.ndarray | None:
        """A fixed-length vector describing ``arch`` for learned models (one-hot ops per edge,
        say); ``None`` when the space defines none."""
        return None

    def fair_paths(self, rng: np.random.Generator) -> list[Arch]:
        """FairNAS strict fairness: m paths that together use every op on every edge exactly
        once (each edge gets its own random permutation of the ops; path k takes entry k)."""
        raise NotImplementedError(f"the {self.name} space has no FairNAS paths")

    def is_degenerate(self, arch: Arch) -> bool:
        """True when the cell's output does not depend on its input (never, unless overridden)."""
        return False

    def canonical_form(self, arch: Arch) -> str:
        """Text shared by exactly the archs the space treats as the same network."""
        return str(arch)

    def sample_many(self, count: int, rng: np.random.Generator) -> list[Arch]:
        """``count`` independent uniform draws (duplicates possible, as in the reference)."""
        return [self.sample(rng) for _ in range(count)]

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture of the space, in the space's documented order."""
        raise NotImplementedError(f"the {self.name} space is too large to enumerate")

    def ground_truth(self, column: str | None = None) -> GroundTruth | None:
        """The true results the space ships for its own archs (``truth.lookup(arch)``), read
        from ``column`` (``None``: the table's default); ``None`` where it ships none."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
