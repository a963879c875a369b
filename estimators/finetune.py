"""Fine-tuning a candidate from inherited supernet weights, recording its trajectory.

Protocol (DESIGN.md): the sub-network holds copies of the supernet's chosen weights and buffers
(the supernet is untouched), a fresh SGD optimizer (constant lr), train mode, and max(B) train
minibatches in one fixed order, identical for every candidate (same images, same crops and
flips). l_b is the loss of train batch b in the forward pass *before* update b; v_b is the loss
(eval mode, no gradient) of validation batch b *after* update b; val_acc[B] is the accuracy on a
fixed validation subset after B updates (val_acc[0]: inherited weights). Only what the enabled
estimators need is computed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from search_spaces import Arch
from search_spaces.errors import SpeedyNASError
from supernet.augment import random_crop_flip
from supernet.base import Supernet
from supernet.batches import BatchIterator
from supernet.run_data import RunData
from supernet.trainer import path_accuracy

from .search_config import FinetuneConfig
from .trajectory import Trajectory


@dataclass
class FinetuneBatches:
    """The fixed batches every candidate sees, prepared once per search."""

    train: list[tuple[torch.Tensor, torch.Tensor]]        # B_max normalised train batches
    val: list[tuple[torch.Tensor, torch.Tensor]]          # B_max normalised val batches (SoVL)
    acc_images: torch.Tensor | None = None                # the valacc subset, normalised
    acc_labels: torch.Tensor | None = None


@dataclass
class FinetuneTimes:
    """Where one candidate's seconds went."""

    train: float = 0.0
    validation: float = 0.0


def prepare_batches(data: RunData, cfg: FinetuneConfig, records: set[str],
                    device: torch.device) -> FinetuneBatches:
    """The fixed train batches (always), validation batches (for ``val_losses``) and the valacc
    subset (for ``val_acc`` / ``val_acc_inherited``), on ``device``, normalised."""
    steps = max(cfg.budgets)
    available = len(data.train_idx) // cfg.batch_size
    if steps > available:
        raise SpeedyNASError(f"finetune.budgets asks for B={steps} minibatches of "
                             f"{cfg.batch_size}, but the run's train split ({len(data.train_idx)} "
                             f"images) gives only {available} distinct ones")
    padding = data.augment.padding

    def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_crop_flip(x, generator, padding, data.augment.flip) if cfg.augment else x

    def fixed(indices: torch.Tensor, transform) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batches = BatchIterator(data.images, data.labels, cfg.batch_size, indices=indices,
                                order="fixed", drop_last=True, seed=cfg.seed, device=device,
                                transform=transform)
        return [(data.augment.eval(x), y) for x, y in batches.take(steps)]

    train = fixed(data.train_idx, crop_flip)
    val = fixed(data.val_idx, None) if "val_losses" in records else []
    batches = FinetuneBatches(train, val)
    if records & {"val_acc", "val_acc_inherited"}:
        idx = data.val_idx[: cfg.val_images]
        batches.acc_images = data.augment.eval(data.images[idx].to(device))
        batches.acc_labels = data.labels[idx].to(device)
    return batches


def finetune(net: Supernet, arch: Arch, batches: FinetuneBatches, cfg: FinetuneConfig,
             records: set[str]) -> tuple[Trajectory, FinetuneTimes]:
    """Fine-tune ``arch``'s inherited sub-network for max(B) steps; its trajectory and timings."""
    steps = max(cfg.budgets) if records & {"train_losses", "val_losses", "val_acc"} else 0
    times = FinetuneTimes()
    sub = net.extract(arch).train()
    optimizer = torch.optim.SGD(sub.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    val_acc: dict[int, float] = {}
    if "val_acc_inherited" in records:
        start = time.perf_counter()
        val_acc[0] = path_accuracy(sub, batches.acc_images, batches.acc_labels)
        times.validation += time.perf_counter() - start
    train_losses, val_losses = [], []
    for b in range(steps):
        start = time.perf_counter()
        x, y = batches.train[b]
        loss = F.cross_entropy(sub(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_losses.append(loss.detach())
        times.train += time.perf_counter() - start
        measure_acc = "val_acc" in records and b + 1 in cfg.budgets
        if "val_losses" in records or measure_acc:
            start = time.perf_counter()
            if "val_losses" in records:
                val_losses.append(_eval_loss(sub, *batches.val[b]))
            if measure_acc:
                val_acc[b + 1] = path_accuracy(sub, batches.acc_images, batches.acc_labels)
            times.validation += time.perf_counter() - start
    trajectory = Trajectory(
        train_losses=torch.stack(train_losses).tolist() if train_losses else [],
        val_losses=torch.stack(val_losses).tolist() if val_losses else None,
        val_acc=val_acc)
    return trajectory, times


@torch.no_grad()
def _eval_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    net.eval()
    loss = F.cross_entropy(net(x), y)
    net.train()
    return loss
