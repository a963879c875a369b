"""One SGD config shape for every training loop (supernet training, fine-tuning, retraining)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .config import setting

__all__ = ["SGDConfig", "cosine_schedule"]


@dataclass(frozen=True)
class SGDConfig:
    """SGD settings; a loop's config section extends this (and may change the defaults)."""

    lr: float = setting(0.025, gt=0, max=10, help="(initial) learning rate")
    momentum: float = setting(0.9, min=0, lt=1)
    nesterov: bool = setting(True)
    weight_decay: float = setting(5e-4, min=0)

    def optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
        """A fresh SGD optimizer over ``params`` with these settings."""
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                    lr_min: float) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """Cosine decay from the optimizer's lr to ``lr_min`` over ``total_steps`` steps (stepped
    once per step)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps,
                                                      eta_min=lr_min)
