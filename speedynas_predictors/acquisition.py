"""Acquisition functions: which unlabelled archs to label next, from a :class:`Prediction`
(larger label = better).

- ``ei``: expected improvement over the best label so far (Mockus 1978; Jones et al. 1998),
  E[max(Y - best, 0)] for Y ~ N(mean, std^2).
- ``ucb``: upper confidence bound mean + kappa * std (Srinivas et al., ICML 2010).
- ``thompson``: one draw from N(mean, std^2) per arch (Thompson 1933; the independent
  Thompson sampling BANANAS uses).
- ``mean``: the predicted mean alone (greedy exploitation).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import norm

from .base import Prediction

__all__ = ["ACQUISITIONS", "Acquisition", "acquisition_values"]

Acquisition = Literal["ei", "ucb", "thompson", "mean"]
ACQUISITIONS: tuple[str, ...] = ("ei", "ucb", "thompson", "mean")


def acquisition_values(kind: Acquisition, prediction: Prediction, best: float,
                       rng: np.random.Generator, kappa: float = 2.0) -> np.ndarray:
    """The acquisition value of each predicted row; the largest is labelled first."""
    mean, std = prediction
    if kind == "mean":
        return mean.copy()
    if kind == "ucb":
        return mean + kappa * std
    if kind == "thompson":
        return rng.normal(mean, std)
    if kind == "ei":
        gap = mean - best
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(std > 0, gap / np.where(std > 0, std, 1), 0.0)
        return np.where(std > 0, gap * norm.cdf(z) + std * norm.pdf(z), np.maximum(gap, 0))
    raise ValueError(f"unknown acquisition {kind!r}; valid: {', '.join(ACQUISITIONS)}")
