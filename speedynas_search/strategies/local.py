"""``local``: best-improvement local search over the one-mutation neighbourhood, with restarts.

Start from the next candidate of the draw, evaluate its whole neighbourhood
(``SearchSpace.neighbours``: 24 archs in NB201, 120 in DARTS) as one batch, move to the best
neighbour while it beats the incumbent of the climb, and restart from the next candidate at a
local optimum. Archs evaluated before are not evaluated again; their stored scores take part.
"""
from __future__ import annotations

from ..metrics import rank_order
from ..results_store import Record
from .registry import Evaluations, Strategy, register_strategy


@register_strategy("local")
class LocalSearch(Strategy):
    """Hill climbing with restarts; see the module docstring."""

    def run(self, evaluations: Evaluations) -> None:
        fidelity = evaluations.fidelity
        known: dict[str, Record] = {}
        for start in evaluations.pool():
            if not evaluations.is_new(start, fidelity):
                continue
            current = evaluations.evaluate([start], fidelity)[0]
            known[current.arch] = current
            while True:
                neighbours = self.space.neighbours(self.space.parse(current.arch))
                new = [a for a in neighbours if evaluations.is_new(a, fidelity)]
                for record in evaluations.evaluate(new, fidelity) if new else []:
                    known[record.arch] = record
                fitness = evaluations.fitness(fidelity)
                scored = sorted((known[str(a)] for a in neighbours if str(a) in known),
                                key=lambda r: r.index)
                if not scored:
                    break
                best = scored[rank_order([fitness[r.index] for r in scored])[0]]
                # rank_order keeps the first of a tie: the best neighbour must beat the current
                if rank_order([fitness[current.index], fitness[best.index]])[0] == 0:
                    break
                current = best

