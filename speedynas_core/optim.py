"""One SGD config shape for every training loop (supernet training, fine-tuning, retraining)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .config import setting
from .errors import SpeedyNASError

__all__ = ["SGDConfig", "cosine_schedule"]


@dataclass(frozen=True)
class SGDConfig:
    """SGD settings; a loop's config section extends this (and may change the defaults)."""

    lr: float = setting(0.025, gt=0, max=10, help="(initial) learning rate")
    momentum: float = setting(0.9, min=0, lt=1)
    nesterov: bool = setting(True)
    weight_decay: float = setting(5e-4, min=0)

    def __post_init__(self) -> None:
        if self.nesterov and self.momentum == 0:
            raise SpeedyNASError("nesterov=true needs a momentum above 0, got momentum=0.0; "
                                 "set nesterov=false or a momentum in (0, 1)")

    def optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
        """A fresh SGD optimizer over ``params`` with these settings."""
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, lr_min: float,
                    warmup_steps: int = 0) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay from the optimizer's lr to ``lr_min`` over ``total_steps`` steps (stepped
    once per step); with ``warmup_steps`` > 0 the first of them instead rise linearly from
    lr / warmup_steps to lr and the cosine spans the rest."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} must be in [0, {total_steps})")
    if not warmup_steps:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps,
                                                          eta_min=lr_min)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup_steps,
                                               total_iters=warmup_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total_steps - warmup_steps, eta_min=lr_min)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine],
                                                 milestones=[warmup_steps])
