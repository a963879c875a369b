"""``lce``: the learning-curve extrapolation framework of NAS-Bench-x11 (Yan, Ye, Chang, Jiang,
White, "NAS-Bench-x11 and the power of learning curves", NeurIPS 2021) around another strategy.

The inner strategy (``inner``: a section naming any single-fidelity strategy with its own
options, e.g. ``inner: {name: evolution, population: 20}``) runs as it would alone, but every
evaluation it asks for is fine-tuned for ``few_steps`` only and judged by ``few_fitness``, an
estimator that extrapolates the partial curve (``lce``: the loss predicted at a longer budget;
listed in ``estimators.names``). After ``few_evaluations`` of them (or when the inner strategy
ends), its ``top_n`` best archs by that extrapolation are fine-tuned for ``max_steps`` (default:
the search's own fine-tune) and judged by the search's fitness, which picks the incumbent.

With ``inner: {name: sample}`` it is two-rung ``halving`` with an extrapolating first rung;
``halving`` itself ranks by what it observed at the low fidelity.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Optional

from speedynas_core.config import setting
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option, PluginSection
from speedynas_core.registry import Registry
from search_spaces import Arch, SearchSpace

from ..metrics import rank_order
from ..results_store import Record
from .registry import (
    STRATEGIES,
    Evaluations,
    Fidelity,
    LimitReached,
    Strategy,
    create_strategy,
    register_strategy,
    require,
)

__all__ = ["InnerStrategy", "LCE"]


@dataclass(frozen=True)
class InnerStrategy(PluginSection):
    """The strategy ``lce`` wraps: its name and, as the other keys, its options."""

    registry: ClassVar[Registry] = STRATEGIES

    name: str = setting("sample", help="a single-fidelity strategy: sample, evolution or local")

    @classmethod
    def config_variant(cls, choice: str | None, context: Mapping[str, Any]) -> type:
        if choice == "lce":
            raise SpeedyNASError("strategy 'lce' cannot wrap itself; name sample, evolution "
                                 "or local")
        return super().config_variant(choice, context)

    @classmethod
    def config_variants(cls, context: Mapping[str, Any]) -> list[tuple[tuple[str, str], type]]:
        return [(key, variant) for key, variant in super().config_variants(context)
                if key[1] != "lce"]

    def create(self, space: SearchSpace) -> Strategy:
        """The configured inner strategy for ``space`` (its refusals say they are the inner's)."""
        try:
            return create_strategy(self.name, space, **self.options())
        except SpeedyNASError as error:
            raise SpeedyNASError(f"strategy.inner ({self.name}): {error}") from None


class _Done(LimitReached):
    """The inner strategy has made ``few_evaluations`` evaluations (the search goes on)."""


class _Capped:
    """What the inner strategy sees: the search's evaluations at the few-step fidelity,
    ended (:class:`_Done`) after ``cap`` evaluations (``None``: no cap)."""

    def __init__(self, outer: Evaluations, fidelity: Fidelity, cap: int | None) -> None:
        self.outer, self.space, self.fidelity, self.cap = outer, outer.space, fidelity, cap
        self.records: list[Record] = []

    def pool(self, count: int | None = None) -> list[Arch]:
        return self.outer.pool(count)

    def is_new(self, arch: Arch, fidelity: Fidelity) -> bool:
        return self.outer.is_new(arch, fidelity)

    def fitness(self, fidelity: Fidelity) -> Mapping[int, float]:
        return self.outer.fitness(fidelity)

    def evaluate(self, archs: Sequence[Arch], fidelity: Fidelity) -> list[Record]:
        room = None if self.cap is None else self.cap - len(self.records)
        if room == 0:
            raise _Done
        batch = list(archs) if room is None else list(archs)[:room]
        new = self.outer.evaluate(batch, fidelity)
        self.records += new
        if len(batch) < len(archs):
            raise _Done
        return new


@register_strategy("lce")
class LCE(Strategy):
    """An inner strategy at ``few_steps``, ranked by extrapolation; its top to ``max_steps``."""

    def __init__(self, space: SearchSpace,
                 inner: Annotated[Strategy | InnerStrategy, Option(
                     type=InnerStrategy, help="the wrapped strategy: name and options")
                 ] = InnerStrategy(),
                 few_steps: Annotated[int, Option(min=1, help="fine-tune steps of the inner "
                                                              "strategy's evaluations")] = 20,
                 few_fitness: Annotated[str, Option(help="estimator ranking them (listed in "
                                                         "estimators.names), e.g. lce")] = "lce",
                 few_evaluations: Annotated[Optional[int], Option(
                     min=1, help="evaluations at few_steps; null: until the inner strategy "
                                 "ends")] = None,
                 top_n: Annotated[int, Option(min=1, help="best archs by few_fitness taken to "
                                                          "max_steps")] = 10,
                 max_steps: Annotated[Optional[int], Option(
                     min=1, help="fine-tune steps of the top_n; null: the search's own "
                                 "(max(finetune.budgets))")] = None) -> None:
        super().__init__(space)
        self.inner = inner if isinstance(inner, Strategy) else inner.create(space)
        few = Fidelity(few_steps, few_fitness, few_steps)
        require(not isinstance(self.inner, LCE) and self.inner.fidelities(few) == [few],
                f"strategy.inner.name={self.inner.name} evaluates at several fidelities; lce "
                "wraps a single-fidelity strategy (sample, evolution or local)")
        require(few_evaluations is not None or self.inner.bounded,
                f"strategy.inner.name={self.inner.name} runs until a limit stops it: set "
                "strategy.few_evaluations (the search's limits would stop it before the "
                "top_n are fine-tuned for max_steps)")
        require(max_steps is None or few_steps < max_steps,
                f"strategy.few_steps={few_steps} must be below strategy.max_steps={max_steps}")
        self.few, self.few_evaluations, self.top_n, self.max_steps = (
            few, few_evaluations, top_n, max_steps)
        self.objectives = self.inner.objectives

    def fidelities(self, default: Fidelity) -> list[Fidelity]:
        final = default if self.max_steps is None else Fidelity(self.max_steps, default.fitness,
                                                                self.max_steps)
        require(self.few.steps < final.steps,
                f"strategy.few_steps={self.few.steps} must be below the {final.steps} "
                "fine-tune steps of the top_n (strategy.max_steps, or max(finetune.budgets))")
        return [self.few, final]

    def run(self, evaluations: Evaluations) -> None:
        few, final = self.fidelities(evaluations.fidelity)
        capped = _Capped(evaluations, few, self.few_evaluations)
        try:
            self.inner.run(capped)
        except _Done:
            pass
        fitness = evaluations.fitness(few)
        ranked = [capped.records[i].arch
                  for i in rank_order([fitness[r.index] for r in capped.records])]
        top = list(dict.fromkeys(ranked))[:self.top_n]  # each arch once, best first
        evaluations.evaluate([self.space.parse(a) for a in top], final)

    def evaluation_count(self, pool_size: int) -> int | None:
        inner = self.inner.evaluation_count(pool_size)
        counts = [n for n in (inner, self.few_evaluations) if n is not None]
        return min(counts) + min(min(counts), self.top_n) if counts else None

    def describe(self) -> str:
        cap = f", {self.few_evaluations} evaluations" if self.few_evaluations else ""
        final = f"{self.max_steps} steps" if self.max_steps else "the search's fine-tune"
        return (f"lce ({self.inner.describe()} at {self.few.steps} steps{cap}, ranked by "
                f"{self.few.fitness}; top {self.top_n} to {final})")
