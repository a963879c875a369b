"""``sample``: rank a fixed uniform draw (the candidates section), as the paper does."""
from __future__ import annotations

from typing import Annotated

from speedynas_core.plugins import Option
from search_spaces import SearchSpace

from .registry import Evaluations, Strategy, register_strategy


@register_strategy("sample")
class Sample(Strategy):
    """Evaluate the configured candidates in order (until a limit stops it)."""

    def __init__(self, space: SearchSpace,
                 batch: Annotated[int, Option(min=1, help="candidates evaluated together "
                                                          "(sharded over torchrun ranks)")
                                  ] = 10) -> None:
        super().__init__(space)
        self.batch = batch

    def evaluation_count(self, pool_size: int) -> int:
        return pool_size

    def run(self, evaluations: Evaluations) -> None:
        pool = evaluations.pool()
        for start in range(0, len(pool), self.batch):
            evaluations.evaluate(pool[start:start + self.batch], evaluations.fidelity)
