"""``evolution``: regularized (ageing) evolution, Real et al. 2019, with optional NSGA-II
multi-objective selection.

The population starts as the first ``population`` candidates of the draw. Each generation draws
``children`` tournaments of ``tournament`` members (without replacement within a tournament),
mutates each winner once (``SearchSpace.mutate``: one op on one edge for NB201, one op or one
input of one node for DARTS) into an arch not evaluated before, evaluates the children together
(in parallel under torchrun), appends them and removes as many of the oldest members. With
``children: 1`` it is Real et al.'s sequential algorithm.

Single objective: a tournament's winner has the highest fitness (ties: the earlier evaluation).
With ``objectives`` (:mod:`search_spaces.objectives`: ``params`` and ``flops``, measured and
minimised, or any column of the space's shipped tables, such as ``pixel3_latency_cifar10``
(minimised) or ``pgd@Linf_eps-1.0`` (maximised), looked up for free), the population is sorted
into non-dominated fronts over (fitness, objectives) and a tournament's winner has the best
front, then the largest crowding distance within it (NSGA-II's crowded comparison).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import numpy as np

from speedynas_core.plugins import Option
from search_spaces import Arch, SearchSpace
from search_spaces.objectives import MEASURED, table_objective

from ..metrics import rank_order
from ..pareto import crowding_distances, nondominated_ranks
from ..results_store import Record
from .registry import Evaluations, Strategy, register_strategy, require

#: Tries at a mutation that gives an arch not yet evaluated before a fresh uniform draw is used.
MUTATION_TRIES = 100


def fresh_mutant(space: SearchSpace, parent: Arch, rng: np.random.Generator,
                 is_new: Callable[[Arch], bool]) -> Arch:
    """One mutation of ``parent`` that ``is_new``; after :data:`MUTATION_TRIES` failures, a
    uniform draw that is (or, in a space evaluated almost entirely, the last draw)."""
    for _ in range(MUTATION_TRIES):
        child = space.mutate(parent, rng)
        if is_new(child):
            return child
    for _ in range(MUTATION_TRIES):
        child = space.sample(rng)
        if is_new(child):
            break
    return child


def objective_reader(space: SearchSpace, name: str) -> Callable[[Record], float]:
    """Objective ``name`` of a record, signed so that larger is better: a measured cost
    (``params``, ``flops``) negated; a table objective looked up, negated when minimised (NaN
    where the table does not know the arch). An unknown name is refused, naming the valid ones."""
    if name in MEASURED:
        return lambda record: -float(getattr(record, name))
    table = table_objective(space, name)
    sign = 1.0 if table.maximise else -1.0

    def read(record: Record) -> float:
        value = table.lookup(record.arch)
        return math.nan if value is None else sign * value
    return read


def crowded_places(records: Sequence[Record], fitness: Mapping[int, float],
                   objectives: Sequence[Callable[[Record], float]]) -> dict[int, int]:
    """Record index -> place in NSGA-II's crowded comparison over (fitness, objectives...), each
    read by :func:`objective_reader`, 0 first: better front, then larger crowding distance, then
    earlier evaluation."""
    points = [[fitness.get(r.index, math.nan)] + [read(r) for read in objectives]
              for r in records]
    fronts = nondominated_ranks(points)
    key: dict[int, tuple[int, float, int]] = {}
    for front in set(fronts):
        members = [i for i, f in enumerate(fronts) if f == front]
        for i, distance in zip(members, crowding_distances([points[i] for i in members])):
            key[records[i].index] = (front, -distance, records[i].index)
    return {index: place for place, index in enumerate(sorted(key, key=key.__getitem__))}


def fitness_places(records: Sequence[Record],
                   fitness: Mapping[int, float]) -> dict[int, int]:
    """Record index -> place by fitness, 0 first (see :func:`~speedynas_search.metrics.rank_order`;
    ``records`` in evaluation order)."""
    order = rank_order([fitness[r.index] for r in records])
    return {records[i].index: place for place, i in enumerate(order)}


@register_strategy("evolution")
class Evolution(Strategy):
    """Regularized evolution (optionally multi-objective); see the module docstring."""

    bounded = False

    def __init__(self, space: SearchSpace,
                 population: Annotated[int, Option(min=2, help="members kept (the oldest "
                                                               "leave first)")] = 20,
                 tournament: Annotated[int, Option(min=1, help="members drawn per "
                                                               "tournament")] = 5,
                 children: Annotated[int, Option(min=1, help="children per generation, "
                                                             "evaluated together")] = 10,
                 seed: Annotated[int, Option(min=0, help="seed of tournaments and "
                                                         "mutations")] = 0,
                 objectives: Annotated[list[str], Option(
                     help="objectives next to the fitness (NSGA-II selection): params, flops "
                          "(measured, minimised) or a column of the space's shipped tables "
                          "(search_spaces.objectives: pixel3_latency_cifar10 minimised, "
                          "pgd@Linf_eps-1.0 maximised, ...); empty: fitness only")] = ()) -> None:
        super().__init__(space)
        require(tournament <= population, f"strategy.tournament={tournament} must be at most "
                                          f"strategy.population={population}")
        require(len(set(objectives)) == len(objectives),
                f"strategy.objectives={list(objectives)} repeats an objective")
        self.population, self.tournament, self.children = population, tournament, children
        self.seed, self.objectives = seed, list(objectives)
        self.readers = [objective_reader(space, name) for name in self.objectives]

    def run(self, evaluations: Evaluations) -> None:
        fidelity = evaluations.fidelity
        rng = np.random.default_rng(self.seed)
        members = deque(evaluations.evaluate(evaluations.pool(self.population), fidelity))
        while True:
            fitness = evaluations.fitness(fidelity)
            place = (crowded_places(members, fitness, self.readers) if self.readers
                     else fitness_places(members, fitness))
            children: list[Arch] = []
            for _ in range(self.children):
                drawn = rng.choice(len(members), size=self.tournament, replace=False)
                winner = min((members[int(i)] for i in drawn), key=lambda r: place[r.index])
                children.append(fresh_mutant(
                    self.space, self.space.parse(winner.arch), rng,
                    lambda a: evaluations.is_new(a, fidelity) and a not in children))
            for record in evaluations.evaluate(children, fidelity):
                members.append(record)
                members.popleft()

    def describe(self) -> str:
        costs = f", objectives {'+'.join(self.objectives)}" if self.objectives else ""
        return (f"evolution (population {self.population}, tournament {self.tournament}, "
                f"{self.children} children per generation, seed {self.seed}{costs})")

