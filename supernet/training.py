"""The trainer a training config calls for: single-path (``cfg.sampler``) or, when
``cfg.method`` names a gradient-based search method, the relaxed supernet's."""
from __future__ import annotations

from pathlib import Path

import torch

from speedynas_core.distributed import DistEnv

from .methods.trainer import DifferentiableTrainer, Truth
from .train_config import TrainConfig
from .trainer import SupernetTrainer


def create_trainer(cfg: TrainConfig, run_dir: Path, env: DistEnv = DistEnv(),
                   device: torch.device | None = None, truth: Truth | None = None,
                   ) -> SupernetTrainer:
    """The trainer of ``cfg``: single-path with its sampler, or by its gradient-based method
    (given ``truth``, that logs the derived arch's true accuracy every epoch)."""
    if cfg.method.name is not None:
        return DifferentiableTrainer(cfg, run_dir, env, device, truth)
    return SupernetTrainer(cfg, run_dir, env, device)


__all__ = ["Truth", "create_trainer"]
