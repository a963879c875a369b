"""The built-in estimators (Ru et al. 2021 definitions; all stored larger-is-better).

Off-by-one convention: a budget of B updates means the training losses l_0 .. l_{B-1}, each
measured in the forward pass *before* its update, so TSE at B sums exactly B losses and
TLmini at B is l_{B-1}, the loss seen by the last of the B updates. The reference code's
"step 100" summed 101 losses (l_0 .. l_100): that is our B = 101. Validation losses v_b are
measured *after* update b, so SoVL at B sums v_0 .. v_{B-1}, the last one after all B updates.

====================  ==========================================  =========================
name                  score at budget B                           options
====================  ==========================================  =========================
``tse``               -sum_{b<B} l_b
``tse_e``             -sum_{b=B-E}^{B-1} l_b (last E minibatches)  ``window`` (E) or
                                                                  ``window_fraction`` (E =
                                                                  floor(f*B), at least 1;
                                                                  default f = 0.5)
``tse_ema``           -sum_{b<B} gamma^(B-1-b) l_b                 ``gamma`` (default 0.999)
``tlmini``            -l_{B-1}
``sovl``              -sum_{b<B} v_b
``valacc``            val_acc[B]
``valacc_inherited``  val_acc[0] (the same for every B)
``params``            parameter count (baseline, no fine-tune)
``flops``             FLOPs (baseline, no fine-tune)
====================  ==========================================  =========================
"""
from __future__ import annotations

import math
from typing import Annotated, Any

from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option

from .registry import Estimator, register_estimator
from .trajectory import Candidate, Trajectory


@register_estimator("tse")
class TSE(Estimator):
    """Training speed estimate: minus the sum of the B training losses."""

    needs = frozenset({"train_losses"})

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return -math.fsum(trajectory.train_losses[:budget])


@register_estimator("tse_e")
class TSEE(Estimator):
    """TSE over the last E minibatches before B only (the early, noisy losses are dropped)."""

    needs = frozenset({"train_losses"})

    def __init__(self, window: Annotated[int | None, Option(
                     min=1, help="E in minibatches (set: overrides window_fraction)")] = None,
                 window_fraction: Annotated[float, Option(
                     gt=0, max=1, help="E as a fraction of B")] = 0.5) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise SpeedyNASError(f"estimator 'tse_e': option 'window' must be an integer >= 1, "
                                 f"got {window!r}")
        if not (isinstance(window_fraction, (int, float)) and not isinstance(window_fraction, bool)
                and 0 < window_fraction <= 1):
            raise SpeedyNASError(f"estimator 'tse_e': option 'window_fraction' must be in (0, 1], "
                                 f"got {window_fraction!r}")
        self.window = window
        self.window_fraction = window_fraction

    @property
    def options(self) -> dict[str, Any]:
        if self.window is not None:
            return {"window": self.window}
        return {"window_fraction": self.window_fraction}

    def window_at(self, budget: int) -> int:
        """E at ``budget``."""
        if self.window is not None:
            return self.window
        return max(1, math.floor(self.window_fraction * budget + 1e-9))

    def check_budget(self, budget: int) -> None:
        super().check_budget(budget)
        if self.window_at(budget) > budget:
            raise SpeedyNASError(f"estimator 'tse_e': window {self.window_at(budget)} is longer "
                                 f"than budget B={budget}")

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return -math.fsum(trajectory.train_losses[budget - self.window_at(budget):budget])


@register_estimator("tse_ema")
class TSEEMA(Estimator):
    """TSE with exponentially decaying weights on older losses (weight 1 on l_{B-1})."""

    needs = frozenset({"train_losses"})

    def __init__(self, gamma: Annotated[float, Option(gt=0, max=1, help="decay")] = 0.999) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
            raise SpeedyNASError(f"estimator 'tse_ema': option 'gamma' must be in (0, 1], "
                                 f"got {gamma!r}")
        self.gamma = float(gamma)

    @property
    def options(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        losses = trajectory.train_losses[:budget]
        return -math.fsum(self.gamma ** (budget - 1 - b) * loss for b, loss in enumerate(losses))


@register_estimator("tlmini")
class TLMini(Estimator):
    """Minus the training loss of the last minibatch before B."""

    needs = frozenset({"train_losses"})

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return -trajectory.train_losses[budget - 1]


@register_estimator("sovl")
class SoVL(Estimator):
    """Minus the sum of the B validation losses, each measured after its update."""

    needs = frozenset({"val_losses"})

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return -math.fsum(trajectory.val_losses[:budget])


@register_estimator("valacc")
class ValAcc(Estimator):
    """Validation accuracy after B updates."""

    needs = frozenset({"val_acc"})

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return trajectory.val_acc[budget]


@register_estimator("valacc_inherited")
class ValAccInherited(Estimator):
    """Validation accuracy of the inherited weights (no fine-tune): the same for every B."""

    needs = frozenset({"val_acc_inherited"})

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return trajectory.val_acc[0]


@register_estimator("params")
class Params(Estimator):
    """Parameter count (baseline; needs no fine-tune)."""

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return candidate.params


@register_estimator("flops")
class Flops(Estimator):
    """FLOPs (baseline; needs no fine-tune)."""

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return candidate.flops
