"""Training a supernet by a gradient-based search method (DARTS, DARTS-TSE, DrNAS, DrNAS-TSE).

The supernet's relaxed mode (:meth:`Supernet.forward_relaxed`) mixes every op of every edge with
weights from α (:mod:`.base`). Each training step is one weight step (SGD, cosine, as the
single-path trainer) on a training batch; the α step (Adam) is, by the method's objective,

- ``validation``: before every weight step, on one batch of the validation split (first-order
  DARTS; the weight step then sees α fixed);
- ``tse``: every ``tse_steps`` weight steps, with the sum of the α-gradients of those steps'
  training losses (each weight step's one backward pass gives both gradients).

The checkpoint keeps the supernet's weights as ``model`` (so ``search.py`` extracts single paths
from them as from any run), α, the arch optimizer, the validation batches' position and the
part-summed TSE gradient, so a killed run resumes bit-identically. Every epoch's history entry
records the derived arch, α's expected mixing weights and, given a ground truth, the derived
arch's true accuracy; TensorBoard gets them as text, a scalar and one heat-map image per cell
type (rows: edges, columns: ops; each row scaled to its maximum, so the strongest op is white).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speedynas_core.distributed import DistEnv, average_gradients
from speedynas_core.event_log import EventLog
from speedynas_core.runtime import mixed_precision
from speedynas_data.batches import derive_seed
from search_spaces import Arch

from ..train_config import TrainConfig
from ..trainer import SupernetTrainer
from .base import GradientMethod, create_method, weights_of

#: The true accuracy of an arch, or ``None`` when the source does not know it.
Truth = Callable[[Arch], Optional[float]]
_VAL_STREAM = 3  # seed stream of the validation batches


class DifferentiableTrainer(SupernetTrainer):
    """Trains the relaxed supernet and α; ``run()`` starts or (after a kill) continues."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, env: DistEnv = DistEnv(),
                 device: torch.device | None = None, truth: Truth | None = None) -> None:
        super().__init__(cfg, run_dir, env, device)
        self.method: GradientMethod = create_method(cfg.method.name, self.net,
                                                    **cfg.method.options())
        self.alphas = self.method.arch_parameters(self.net, cfg.seed).to(self.device)
        self.arch_optimizer = self.method.arch_optimizer(self.alphas)
        self.val_batches = None if self.method.tse_steps is not None else self.data.batches(
            "val", cfg.optim.batch_size, order="shuffle", seed=derive_seed(cfg.seed, _VAL_STREAM),
            device=self.device, train_transform=True)
        self.tse_sum = [torch.zeros_like(a) for a in self.alphas.parameters()]
        self.both = nn.ModuleList([self.net, self.alphas])  # one all-reduce for both gradients
        self.truth = truth

    def path_sampler(self) -> None:
        """None: every step trains the relaxed supernet, all paths at once."""
        return None

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alphas": self.alphas.state_dict(),
                "arch_optimizer": self.arch_optimizer.state_dict(),
                "tse_sum": [t.clone() for t in self.tse_sum],
                **({"val_batches": self.val_batches.state_dict()}
                   if self.val_batches is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.alphas.load_state_dict(state["alphas"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        for kept, saved in zip(self.tse_sum, state["tse_sum"]):
            kept.copy_(saved)
        if self.val_batches is not None:
            self.val_batches.load_state_dict(state["val_batches"])

    # ------------------------------------------------------------------ training

    def relaxed_loss(self, x: torch.Tensor, y: torch.Tensor,
                     weights: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Cross-entropy of the relaxed supernet (forward in ``precision``) and the number of
        correct predictions."""
        with mixed_precision(x.device, self.cfg.precision):
            logits = self.net.forward_relaxed(x, weights)
            loss = F.cross_entropy(logits, y)
        return loss, int((logits.argmax(1) == y).sum())

    def validation_arch_step(self) -> None:
        """One α step on a validation batch's loss (first-order: weights held fixed)."""
        micro = self.cfg.optim.micro_batches
        alphas = list(self.alphas.parameters())
        for xv, yv in self.shards(*next(self.val_batches.take(1))):
            loss, _ = self.relaxed_loss(xv, yv, self.method.mixing_weights(self.alphas))
            (loss / micro).backward(inputs=alphas)
        average_gradients(self.alphas, self.env)
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   stop: bool = False) -> tuple[float, float, bool]:
        """The method's α step (when due) and one weight step; returns the training loss and
        accuracy (means over micro-batches and ranks) and whether any rank was asked to
        stop."""
        self.optimizer.zero_grad(set_to_none=not self.cfg.optim.legacy_zero_grad)
        tse = self.method.tse_steps is not None
        if not tse:
            self.validation_arch_step()
        micro = self.cfg.optim.micro_batches
        stats = np.zeros(2)
        for xm, ym in self.shards(x, y):
            weights = self.method.mixing_weights(self.alphas)
            if not tse:
                weights = {k: w.detach() for k, w in weights.items()}
            loss, correct = self.relaxed_loss(xm, ym, weights)
            (loss / micro).backward()
            stats += (float(loss.detach()), correct / len(ym))
        loss, acc, stopping = average_gradients(self.both, self.env,
                                                [*(stats / micro), float(stop)])
        self.weight_step(loss)
        if tse:
            self.tse_arch_step()
        return loss, acc, stopping > 0

    def tse_arch_step(self) -> None:
        """Add this step's α-gradient to the TSE sum; after every ``tse_steps`` weight steps,
        update α with the sum and start a new one."""
        for total, alpha in zip(self.tse_sum, self.alphas.parameters()):
            total += alpha.grad
        if (self.step + 1) % self.method.tse_steps == 0:
            for total, alpha in zip(self.tse_sum, self.alphas.parameters()):
                alpha.grad = total.clone()
                total.zero_()
            self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ reporting

    def epoch_extras(self, writer: EventLog | None) -> dict[str, Any]:
        """The derived arch, α's expected mixing weights and the arch's true accuracy."""
        probabilities = self.method.probabilities(self.alphas)
        arch = self.net.derive(probabilities)
        extras: dict[str, Any] = {"derived_arch": str(arch)}
        true_acc = self.truth(arch) if self.truth is not None and self.env.is_main else None
        if true_acc is not None:
            extras["derived_true_acc"] = float(true_acc)
        extras["mixing_weights"] = weights_of(probabilities)
        if writer is not None:
            writer.add_text("derived_arch", str(arch), self.step)
            for kind, p in probabilities.items():
                writer.add_image(f"mixing_weights/{kind}", heat_map(p), self.step,
                                 dataformats="HW")
        return extras


def heat_map(probabilities: torch.Tensor, cell: int = 12) -> torch.Tensor:
    """An (edges, ops) matrix as a grey image, ``cell`` pixels per entry, each row scaled to
    its maximum (the strongest op of an edge is white, however close the weights are)."""
    rows = probabilities.detach().float().cpu()
    rows = rows / rows.max(dim=1, keepdim=True).values.clamp_min(1e-12)
    return rows.repeat_interleave(cell, 0).repeat_interleave(cell, 1)


__all__ = ["DifferentiableTrainer", "Truth", "heat_map"]
