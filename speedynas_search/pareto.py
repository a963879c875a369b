"""Pareto fronts of candidates: maximise an estimator's score while minimising a cost.

Candidate a dominates b when score_a >= score_b and cost_a <= cost_b, one of them strictly.
The front is every candidate no other dominates (exact duplicates are all kept); candidates
with a non-finite score are never on it. NSGA-II's non-dominated sorting and crowding distance
(any number of objectives, all maximised) serve multi-objective evolution; the hypervolume of
a (score, cost) front measures how much of a true front a found one covers, and
:func:`reached` which of the true front's points it reaches (exactly or within a tolerance).
A maximised second objective is passed negated as a cost.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby

import numpy as np

__all__ = ["crowding_distances", "hypervolume", "hypervolume_gains", "nondominated_ranks",
           "pareto_front", "reached"]


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


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (all maximised)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def nondominated_ranks(objectives: Sequence[Sequence[float]]) -> list[int]:
    """NSGA-II's non-dominated sorting: the front number of each point (0 = not dominated by
    any; 1 = dominated only by front 0; ...). Every objective is maximised; pass a cost
    negated. A point with a non-finite objective goes to a last front of its own."""
    n = len(objectives)
    finite = [i for i in range(n) if all(math.isfinite(v) for v in objectives[i])]
    ranks = [-1] * n
    remaining, front = set(finite), 0
    while remaining:
        current = [i for i in remaining
                   if not any(_dominates(objectives[j], objectives[i]) for j in remaining)]
        for i in current:
            ranks[i] = front
        remaining -= set(current)
        front += 1
    return [front if r < 0 else r for r in ranks]


def crowding_distances(objectives: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point within its set (pass one front): the sum over
    objectives of the normalised gap between its two neighbours; the extremes get infinity."""
    n = len(objectives)
    distance = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for m in range(len(objectives[0])):
        order = sorted(range(n), key=lambda i: (objectives[i][m], i))
        low, high = objectives[order[0]][m], objectives[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low or not math.isfinite(high - low):
            continue
        for before, i, after in zip(order, order[1:], order[2:]):
            distance[i] += (objectives[after][m] - objectives[before][m]) / (high - low)
    return distance


def hypervolume(scores: Sequence[float], costs: Sequence[float],
                reference: tuple[float, float]) -> float:
    """The area dominated by the points (score maximised, cost minimised) and bounded by
    ``reference`` = (worst score, worst cost); points not better than it on both count 0."""
    ref_score, ref_cost = reference
    area, best = 0.0, ref_score
    for i in sorted(range(len(scores)), key=lambda i: (costs[i], -scores[i])):
        if costs[i] >= ref_cost or not math.isfinite(scores[i]) or scores[i] <= best:
            continue
        area += (scores[i] - best) * (ref_cost - costs[i])
        best = scores[i]
    return area


def hypervolume_gains(scores: Sequence[float], costs: Sequence[float],
                      reference: tuple[float, float], new_scores: Sequence[float],
                      new_costs: Sequence[float]) -> np.ndarray:
    """For each new point, the hypervolume it alone adds to the points (score maximised, cost
    minimised; the same area as ``hypervolume`` of the points with it, minus without it), all
    at once: above each cost the points dominate a staircase of scores, and a new point adds
    the area between its score and that staircase from its cost to the reference cost."""
    ref_score, ref_cost = reference
    order = sorted((c, s) for s, c in zip(scores, costs)
                   if math.isfinite(s) and math.isfinite(c) and c < ref_cost)
    steps_cost = np.array([c for c, _ in order] + [ref_cost], dtype=float)
    heights = np.maximum.accumulate(np.array([ref_score] + [s for _, s in order], dtype=float))
    # interval k: costs [steps_cost[k-1], steps_cost[k]) at height heights[k] (k = 0: below all)
    lows = np.concatenate([[-np.inf], steps_cost[:-1]])
    new_s = np.asarray(new_scores, dtype=float)[:, None]
    new_c = np.asarray(new_costs, dtype=float)[:, None]
    widths = np.clip(steps_cost[None, :] - np.maximum(lows[None, :], new_c), 0, None)
    gains = (np.clip(new_s - heights[None, :], 0, None) * widths).sum(axis=1)
    return np.where(np.isfinite(gains), gains, 0.0)


def reached(scores: Sequence[float], costs: Sequence[float], by_scores: Sequence[float],
            by_costs: Sequence[float], tolerance: tuple[float, float] = (0.0, 0.0)) -> list[bool]:
    """Whether each point (score maximised, cost minimised) is reached by one of the ``by``
    points: one at most ``tolerance`` = (score, cost) worse on each. With no tolerance that is
    one at least as good on both: for a point of a true front, one with the same values."""
    low, high = tolerance
    return [any(s >= score - low and c <= cost + high for s, c in zip(by_scores, by_costs))
            for score, cost in zip(scores, costs)]
