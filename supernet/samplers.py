"""Path samplers: which single path(s) of the supernet one training step trains.

Every sampler returns, per step, a list of m paths; the trainer runs each path on the same
minibatch, scales its loss by 1/m, accumulates gradients and takes one optimizer step. A path is
one Arch (the same cell everywhere) or, with ``per_cell``, a list of one Arch per cell position.
Samplers hold no state of their own: all randomness comes from the generator passed to
:meth:`PathSampler.paths`, which the trainer seeds and checkpoints.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, Callable, Literal, Union

import numpy as np

from speedynas_core.plugins import Option
from speedynas_core.registry import Registry
from search_spaces import Arch

from .base import Supernet
from .measure import path_parameters

Path = Union[Arch, list[Arch]]
PerCell = Annotated[bool, Option(help="an independent cell per position (reference RandNAS)")]


class PathSampler(ABC):
    """Draws the path(s) of one training step."""

    def __init__(self, net: Supernet, per_cell: PerCell = False) -> None:
        self.space = net.space
        self.num_cells = net.num_search_cells
        self.per_cell = per_cell

    def uniform(self, rng: np.random.Generator) -> Path:
        """One uniform path: one cell, or an independent cell per position."""
        if self.per_cell:
            return [self.space.sample(rng) for _ in range(self.num_cells)]
        return self.space.sample(rng)

    @abstractmethod
    def paths(self, rng: np.random.Generator) -> list[Path]:
        """The paths trained in one step."""


#: Path samplers, chosen with ``sampler.name`` (gradient-based methods, which mix all paths,
#: have a registry of their own: :data:`supernet.methods.METHODS`).
SAMPLERS: Registry[PathSampler] = Registry("sampler", fixed=("net",))
register_sampler: Callable = SAMPLERS.register


def create_sampler(name: str, net: Supernet, **options: Any) -> PathSampler:
    """The sampler registered as ``name`` for ``net``."""
    return SAMPLERS.create(name, net, **options)


def list_samplers() -> list[str]:
    """Registered sampler names."""
    return SAMPLERS.names()


@register_sampler("randnas")
class RandNAS(PathSampler):
    """RandNAS / SPOS: one uniformly drawn path per step."""

    def paths(self, rng: np.random.Generator) -> list[Path]:
        return [self.uniform(rng)]


@register_sampler("fairnas")
class FairNAS(PathSampler):
    """FairNAS strict fairness: m paths per step using every op on every edge exactly once
    (NB201: 5 paths; DARTS: 7, each node's two inputs drawn once per step)."""

    def paths(self, rng: np.random.Generator) -> list[Path]:
        if not self.per_cell:
            return list(self.space.fair_paths(rng))
        per_cell = [self.space.fair_paths(rng) for _ in range(self.num_cells)]
        return [[cell[k] for cell in per_cell] for k in range(len(per_cell[0]))]


@register_sampler("multipaths")
class MultiPaths(PathSampler):
    """k paths per step: independent uniform draws, or one from each of k parameter-count
    strata (quantiles of the path's parameter count, a label-free quantity, estimated once from
    ``calibration`` seeded draws)."""

    def __init__(self, net: Supernet, per_cell: PerCell = False,
                 num_paths: Annotated[int, Option(min=1, help="paths per step")] = 4,
                 stratify: Annotated[Literal["none", "params"], Option(
                     help="one path per parameter-count quantile")] = "none",
                 calibration: Annotated[int, Option(
                     min=1, help="stratify=params: draws that estimate the quantiles")] = 256,
                 seed: Annotated[int, Option(min=0, help="seed of the calibration draws")] = 0,
                 ) -> None:
        super().__init__(net, per_cell)
        if num_paths < 1:
            raise ValueError(f"num_paths must be >= 1, got {num_paths}")
        self.num_paths, self.stratify, self.net = num_paths, stratify, net
        self.edges: np.ndarray | None = None
        if stratify == "params":
            calibration_rng = np.random.default_rng(seed)
            draws = [path_parameters(net, self.uniform(calibration_rng))
                     for _ in range(calibration)]
            self.edges = np.quantile(draws, np.linspace(0, 1, num_paths + 1)[1:-1])
        elif stratify != "none":
            raise ValueError(f"unknown stratify {stratify!r}; valid: none, params")

    def stratum(self, path: Path) -> int:
        """Index of the parameter-count stratum ``path`` falls into."""
        return int(np.searchsorted(self.edges, path_parameters(self.net, path), side="right"))

    def paths(self, rng: np.random.Generator) -> list[Path]:
        if self.edges is None:
            return [self.uniform(rng) for _ in range(self.num_paths)]
        chosen: list[Path | None] = [None] * self.num_paths
        for _ in range(1000 * self.num_paths):
            path = self.uniform(rng)
            stratum = self.stratum(path)
            if chosen[stratum] is None:
                chosen[stratum] = path
                if all(p is not None for p in chosen):
                    return chosen
        raise RuntimeError("could not fill every parameter-count stratum; the space has too few "
                           "distinct parameter counts for this many paths")
