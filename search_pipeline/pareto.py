"""Pareto fronts of candidates: maximise an estimator's score while minimising a cost.

Candidate a dominates b when score_a >= score_b and cost_a <= cost_b, one of them strictly.
The front is every candidate no other dominates (exact duplicates are all kept); candidates
with a non-finite score are never on it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby

__all__ = ["pareto_front"]


def pareto_front(scores: Sequence[float], costs: Sequence[float]) -> list[int]:
    """Indices of the non-dominated candidates, by increasing cost (ties: candidate order)."""
    if len(scores) != len(costs):
        raise ValueError(f"{len(scores)} scores for {len(costs)} costs")
    finite = [i for i, s in enumerate(scores) if math.isfinite(s)]
    order = sorted(finite, key=lambda i: (costs[i], i))
    front: list[int] = []
    best = -math.inf  # best score among strictly cheaper candidates
    for _, group in groupby(order, key=lambda i: costs[i]):
        members = list(group)
        top = max(scores[i] for i in members)
        if top > best:
            front += [i for i in members if scores[i] == top]
            best = top
    return front
