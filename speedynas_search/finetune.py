"""Fine-tuning a candidate from inherited supernet weights, recording its trajectory.

Protocol (docs/method.md): the sub-network holds copies of the supernet's chosen weights and buffers
(the supernet is untouched), a fresh SGD optimizer (constant lr), train mode, and max(B) train
minibatches in one fixed order, identical for every candidate (same images, same crops and
flips). l_b is the loss of train batch b in the forward pass *before* update b; v_b is the loss
(eval mode, no gradient) of validation batch b *after* update b; val_acc[B] is the accuracy on a
fixed validation subset after B updates (val_acc[0]: inherited weights). Only what the enabled
estimators need is computed: when no estimator needs a fine-tune record (zero-cost estimators
and size baselines only), no update is made at all.

Zero-cost estimators (:class:`ZeroCostSetup`) are measured before any update, each on its own
copy of the candidate's network: the inherited sub-network, or (``weights="init"``) the arch's
stand-alone network (its own size, by default the benchmark's) freshly initialised with a fixed
seed, the same for every candidate. They see the first ``batches`` fixed train batches.
"""
from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from speedynas_core.errors import SpeedyNASError
from speedynas_core.runtime import Precision, mixed_precision
from estimators.registry import Batch, Estimator
from estimators.trajectory import FINE_TUNE_RECORDS, Trajectory
from speedynas_data.augment import random_crop_flip
from speedynas_data.batches import BatchIterator
from speedynas_data.run_data import RunData
from search_spaces import Arch
from supernet import build_network
from supernet.base import Supernet, clone_module
from supernet.measure import path_accuracy

from .search_config import FinetuneConfig


@dataclass
class FinetuneBatches:
    """The fixed batches every candidate sees, prepared once per search."""

    train: list[tuple[torch.Tensor, torch.Tensor]]        # B_max normalised train batches
    val: list[tuple[torch.Tensor, torch.Tensor]]          # B_max normalised val batches (SoVL)
    acc_images: torch.Tensor | None = None                # the valacc subset, normalised
    acc_labels: torch.Tensor | None = None


@dataclass
class FinetuneTimes:
    """Where one candidate's seconds went (``zero_cost``: per zero-cost estimator)."""

    train: float = 0.0
    validation: float = 0.0
    zero_cost: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ZeroCostSetup:
    """How the zero-cost estimators measure each candidate."""

    measurers: tuple[Estimator, ...] = ()      # whose ``measure`` runs (one per name)
    weights: Literal["inherited", "init"] = "init"
    batches: int = 1                            # fixed train batches each measure sees
    seed: int = 0                               # seed of the fresh initialisation ("init")
    #: "init": the stand-alone network's size options (empty: the network's defaults).
    network_size: Mapping[str, Any] = field(default_factory=dict)

    def describe_size(self) -> str:
        """``C=16, N=5``: the init network's size options."""
        return ", ".join(f"{k}={v}" for k, v in self.network_size.items()) or "default size"

    def network(self, supernet: Supernet, arch: Arch,
                inherited: nn.Module | None = None) -> nn.Module:
        """The network measured: the inherited sub-network (``inherited``, extracted from
        ``supernet`` when not given), or the arch's stand-alone network of ``network_size``
        initialised from ``seed`` (on the supernet's device)."""
        if self.weights == "inherited":
            return inherited if inherited is not None else supernet.extract(arch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            fresh = build_network(arch, num_classes=supernet.size()["num_classes"],
                                  **self.network_size)
        return fresh.to(next(supernet.parameters()).device)

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> tuple[dict[str, float],
                                                                         dict[str, float]]:
        """Each measurer's value on its own train-mode copy of ``net``, and its seconds."""
        values, seconds = {}, {}
        for estimator in self.measurers:
            start = time.perf_counter()
            values[estimator.name] = float(estimator.measure(clone_module(net).train(), batches))
            seconds[estimator.name] = time.perf_counter() - start
        return values, seconds


def fine_tune_steps(cfg: FinetuneConfig, records: set[str] | frozenset[str],
                    steps: int | None = None) -> int:
    """Updates per candidate: ``steps`` (default max(B)), or 0 when nothing recorded needs
    fine-tuning."""
    if not records & FINE_TUNE_RECORDS:
        return 0
    return max(cfg.budgets) if steps is None else steps


def prepare_batches(data: RunData, cfg: FinetuneConfig, records: set[str],
                    device: torch.device, zero_cost_batches: int = 0,
                    steps: int | None = None) -> FinetuneBatches:
    """The fixed train batches (as many as the fine-tune of ``steps`` updates, default max(B),
    or the zero-cost estimators use), validation batches (for ``val_losses``) and the valacc
    subset (for ``val_acc`` / ``val_acc_inherited``), on ``device``, normalised."""
    steps = max(fine_tune_steps(cfg, records, steps), zero_cost_batches)
    available = len(data.train_idx) // cfg.batch_size
    if steps > available:
        asked = (f"finetune.budgets asks for B={steps}" if steps > zero_cost_batches else
                 f"zero_cost.batches asks for {steps}")
        raise SpeedyNASError(f"{asked} minibatches of {cfg.batch_size}, but the run's train "
                             f"split ({len(data.train_idx)} images) gives only {available} "
                             "distinct ones")
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
             records: set[str], zero_cost: ZeroCostSetup | None = None,
             precision: Precision = "fp32", *, steps: int | None = None,
             budgets: Collection[int] | None = None) -> tuple[Trajectory, FinetuneTimes]:
    """Measure the zero-cost estimators (in fp32), then fine-tune ``arch``'s inherited
    sub-network for ``steps`` steps (default max(B); none when no record needs it), forward
    passes in ``precision``, measuring ``val_acc`` after each of ``budgets`` updates (default
    ``cfg.budgets``); its trajectory and timings."""
    budgets = cfg.budgets if budgets is None else budgets
    steps = fine_tune_steps(cfg, records, steps)
    times = FinetuneTimes()
    sub = net.extract(arch).train()
    zero_cost_values: dict[str, float] = {}
    if zero_cost is not None and zero_cost.measurers:
        measured = zero_cost.network(net, arch, sub)
        zero_cost_values, times.zero_cost = zero_cost.measure(
            measured, batches.train[: zero_cost.batches])
    optimizer = cfg.optimizer(sub.parameters())
    val_acc: dict[int, float] = {}
    if "val_acc_inherited" in records:
        start = time.perf_counter()
        val_acc[0] = path_accuracy(sub, batches.acc_images, batches.acc_labels,
                                   precision=precision)
        times.validation += time.perf_counter() - start
    train_losses, val_losses = [], []
    for b in range(steps):
        start = time.perf_counter()
        x, y = batches.train[b]
        with mixed_precision(x.device, precision):
            loss = F.cross_entropy(sub(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_losses.append(loss.detach())
        times.train += time.perf_counter() - start
        measure_acc = "val_acc" in records and b + 1 in budgets
        if "val_losses" in records or measure_acc:
            start = time.perf_counter()
            if "val_losses" in records:
                val_losses.append(_eval_loss(sub, *batches.val[b], precision))
            if measure_acc:
                val_acc[b + 1] = path_accuracy(sub, batches.acc_images, batches.acc_labels,
                                               precision=precision)
            times.validation += time.perf_counter() - start
    trajectory = Trajectory(
        train_losses=torch.stack(train_losses).tolist() if train_losses else [],
        val_losses=torch.stack(val_losses).tolist() if val_losses else None,
        val_acc=val_acc, zero_cost=zero_cost_values)
    return trajectory, times


@torch.no_grad()
def _eval_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               precision: Precision) -> torch.Tensor:
    net.eval()
    with mixed_precision(x.device, precision):
        loss = F.cross_entropy(net(x), y)
    net.train()
    return loss
