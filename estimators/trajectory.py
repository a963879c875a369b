"""What one fine-tune of one candidate records (:class:`Trajectory`) and the candidate itself.

Conventions (the fine-tune loop writes them, every estimator reads them):

- ``train_losses[b]`` = l_b, the loss of training minibatch ``b`` in the forward pass *before*
  update ``b`` (b = 0 .. B_max-1). "B updates" therefore means the losses l_0 .. l_{B-1}: a
  budget B uses exactly B recorded losses, and B_max = ``len(train_losses)``.
- ``val_losses[b]`` = v_b, the loss of validation minibatch ``b`` measured *after* update ``b``;
  ``None`` when the run did not record it.
- ``val_acc[B]`` = accuracy on the validation subset after B updates, only at the recorded
  budgets; ``val_acc[0]`` is the inherited (not fine-tuned) network.
- ``zero_cost[name]`` = the value zero-cost estimator ``name`` measured on the candidate's
  network before any update (see :meth:`~estimators.registry.Estimator.measure`).

The names of the record kinds an estimator can need are :data:`RECORDS`;
:meth:`Trajectory.missing` says which of them a trajectory lacks for a budget.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from speedynas_core.errors import SpeedyNASError

#: Record kinds an estimator may need (``Estimator.needs`` is a subset):
#: ``train_losses`` (l_0..l_{B-1}), ``val_losses`` (v_0..v_{B-1}), ``val_acc`` (accuracy after
#: B updates), ``val_acc_inherited`` (accuracy at B = 0, no fine-tune), ``zero_cost`` (values
#: measured on the network before any update, by the estimators' ``measure``).
RECORDS: frozenset[str] = frozenset({"train_losses", "val_losses", "val_acc", "val_acc_inherited",
                                     "zero_cost"})
#: Record kinds that require fine-tuning (``val_acc_inherited`` needs only one evaluation,
#: ``zero_cost`` none).
FINE_TUNE_RECORDS: frozenset[str] = frozenset({"train_losses", "val_losses", "val_acc"})


def _field(data: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return data[key]
    except (KeyError, TypeError):
        raise SpeedyNASError(f"{what} record has no {key!r} field: {data!r:.200}") from None


def _float(value: Any) -> float:
    """A number; ``None`` (how strict JSON stores NaN) reads as NaN."""
    return math.nan if value is None else float(value)


def _floats(values: Iterable[Any], what: str) -> list[float]:
    try:
        return [_float(v) for v in values]
    except (TypeError, ValueError):
        raise SpeedyNASError(f"{what} must be a list of numbers, got {values!r:.200}") from None


@dataclass
class Trajectory:
    """One fine-tune of one candidate, ``B_max = len(train_losses)`` updates long."""

    train_losses: list[float]
    val_losses: list[float] | None = None
    val_acc: dict[int, float] = field(default_factory=dict)
    zero_cost: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train_losses = _floats(self.train_losses, "train_losses")
        if self.val_losses is not None:
            self.val_losses = _floats(self.val_losses, "val_losses")
        try:
            self.val_acc = {int(b): _float(a) for b, a in dict(self.val_acc).items()}
        except (TypeError, ValueError):
            raise SpeedyNASError(f"val_acc must map budgets to accuracies, got "
                                 f"{self.val_acc!r:.200}") from None
        try:
            self.zero_cost = {str(k): _float(v) for k, v in dict(self.zero_cost).items()}
        except (TypeError, ValueError):
            raise SpeedyNASError(f"zero_cost must map estimator names to numbers, got "
                                 f"{self.zero_cost!r:.200}") from None

    @property
    def steps(self) -> int:
        """B_max: the number of updates recorded."""
        return len(self.train_losses)

    def missing(self, needs: Iterable[str], budget: int) -> list[str]:
        """Why the records in ``needs`` do not cover ``budget`` (empty when they do)."""
        problems = []
        for need in sorted(needs):
            if need == "train_losses" and budget > len(self.train_losses):
                problems.append(f"needs {budget} training losses but {len(self.train_losses)} "
                                "were recorded")
            elif need == "val_losses" and self.val_losses is None:
                problems.append("needs validation losses but none were recorded")
            elif need == "val_losses" and budget > len(self.val_losses or ()):
                problems.append(f"needs {budget} validation losses but "
                                f"{len(self.val_losses or ())} were recorded")
            elif need == "val_acc" and budget not in self.val_acc:
                problems.append(f"needs the validation accuracy after {budget} updates; recorded "
                                f"at B = {sorted(self.val_acc) or 'none'}")
            elif need == "val_acc_inherited" and 0 not in self.val_acc:
                problems.append("needs the inherited weights' validation accuracy (B = 0), "
                                "which was not recorded")
            elif need == "zero_cost" and not self.zero_cost:
                problems.append("needs zero-cost values but none were measured")
        return problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``val_acc`` keys become strings; non-finite values stay floats,
        which the results writer stores as ``null`` and :meth:`from_dict` reads back as NaN)."""
        return {"train_losses": list(self.train_losses),
                "val_losses": None if self.val_losses is None else list(self.val_losses),
                "val_acc": {str(b): a for b, a in sorted(self.val_acc.items())},
                "zero_cost": dict(self.zero_cost)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        """Inverse of :meth:`to_dict` (accepts string or int ``val_acc`` keys)."""
        return cls(train_losses=_field(data, "train_losses", "trajectory"),
                   val_losses=data.get("val_losses"),
                   val_acc=data.get("val_acc") or {},
                   zero_cost=data.get("zero_cost") or {})


@dataclass
class Candidate:
    """A candidate architecture: canonical arch text, parameter count, FLOPs (``None``: not
    counted), and its search space's encoding and graph features (``None``: not given; derived
    from the arch, so never stored)."""

    arch: str
    params: int
    flops: int | None
    encoding: tuple[float, ...] | None = field(default=None, compare=False)
    graph: tuple[float, ...] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"arch": self.arch, "params": self.params, "flops": self.flops}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict` (extra keys, e.g. of a results line, are ignored)."""
        arch, params, flops = (_field(data, k, "candidate") for k in ("arch", "params", "flops"))
        try:
            return cls(arch=str(arch), params=int(params),
                       flops=None if flops is None else int(flops))
        except (TypeError, ValueError):
            raise SpeedyNASError(f"candidate params/flops must be integers: {data!r:.200}") \
                from None
