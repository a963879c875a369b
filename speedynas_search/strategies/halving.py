"""``halving``: successive halving across fidelities (the LCE framework of NAS-Bench-x11).

Rung r evaluates ``sizes[r]`` archs with ``rung_steps[r]`` fine-tune steps and ranks them by
its fitness (``rung_fitness[r]``; default: the search's fitness), read at B = the rung's steps;
the best ``sizes[r + 1]`` go up a rung. Rung 0 takes the first ``sizes[0]`` candidates of the
draw. A typical ladder: zero-cost estimators (B = 0) on thousands of candidates, TSE at B = 100
on the best fraction, B = 300 on the best of those; retraining (``retrain.enabled``) then takes
the final rung's top-k. Each rung fine-tunes from the inherited weights again (its steps count
in full). Within a rung, archs are evaluated ``batch`` at a time.
"""
from __future__ import annotations

from typing import Annotated, Optional

from speedynas_core.plugins import Option
from search_spaces import SearchSpace

from ..metrics import rank_order
from ..results_store import Record
from .registry import Evaluations, Fidelity, Strategy, register_strategy, require


@register_strategy("halving")
class Halving(Strategy):
    """Successive halving across fidelities; see the module docstring."""

    def __init__(self, space: SearchSpace,
                 sizes: Annotated[list[int], Option(min=1, help="archs per rung, "
                                                                "decreasing")] = (1000, 140, 20),
                 rung_steps: Annotated[list[int], Option(min=0, help="fine-tune steps per "
                                                                     "rung, increasing")
                                       ] = (0, 100, 300),
                 rung_fitness: Annotated[Optional[list[str]], Option(
                     help="estimator ranking each rung (listed in estimators.names); null: "
                          "strategy.fitness on every rung")] = None,
                 batch: Annotated[int, Option(min=1, help="archs evaluated together within "
                                                          "a rung")] = 50) -> None:
        super().__init__(space)
        sizes, rung_steps = list(sizes), list(rung_steps)
        require(len(sizes) == len(rung_steps) and sizes,
                f"strategy.sizes={sizes} and strategy.rung_steps={rung_steps} must list one "
                "value per rung")
        require(all(a > b for a, b in zip(sizes, sizes[1:])),
                f"strategy.sizes={sizes} must decrease from rung to rung")
        require(all(a < b for a, b in zip(rung_steps, rung_steps[1:])),
                f"strategy.rung_steps={rung_steps} must increase from rung to rung")
        require(rung_fitness is None or len(rung_fitness) == len(sizes),
                f"strategy.rung_fitness={rung_fitness} must name one estimator per rung "
                f"({len(sizes)})")
        self.sizes, self.rung_steps, self.rung_fitness, self.batch = (
            sizes, rung_steps, rung_fitness, batch)

    def fidelities(self, default: Fidelity) -> list[Fidelity]:
        names = self.rung_fitness or [default.fitness] * len(self.sizes)
        return [Fidelity(steps, name, steps) for steps, name in zip(self.rung_steps, names)]

    def run(self, evaluations: Evaluations) -> None:
        archs = evaluations.pool(self.sizes[0])
        for size, fidelity in zip(self.sizes, self.fidelities(evaluations.fidelity)):
            archs = archs[:size]
            records: list[Record] = []
            for start in range(0, len(archs), self.batch):
                records += evaluations.evaluate(archs[start:start + self.batch], fidelity)
            fitness = evaluations.fitness(fidelity)
            ranked = rank_order([fitness[r.index] for r in records])
            archs = [self.space.parse(records[i].arch) for i in ranked]

    def evaluation_count(self, pool_size: int) -> int:
        return sum(self.sizes)

    def describe(self) -> str:
        return "halving (" + ", ".join(f"{n} at B={b}" for n, b in zip(self.sizes,
                                                                      self.rung_steps)) + ")"

