"""Ranking metrics: how well an estimator's scores order candidates by true accuracy.

Conventions:

- Larger scores are better. Non-finite scores (NaN, +-inf, e.g. from a diverged fine-tune)
  rank below every finite score: for the correlations they all tie at the bottom rank, for
  top-k they come last.
- Ties in score are broken by candidate order: the earlier candidate ranks higher
  (:func:`rank_order`), so top-k is deterministic. Spearman (average ranks) and Kendall's tau-b
  (:mod:`scipy.stats`) treat ties as ties.
- A correlation that is undefined (fewer than 2 candidates, or constant scores or truths) is
  ``None``, so results stay valid JSON.
- With fewer than k candidates, top-k means all of them.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["Paired", "best_top_k", "pair_with_truth", "rank_metrics", "rank_order", "top_k"]


def rank_order(scores: Sequence[float]) -> list[int]:
    """Candidate indices best first: finite scores descending, ties by index, non-finite last."""
    values = [float(s) for s in scores]
    return sorted(range(len(values)), key=lambda i: (0, -values[i], i)
                  if math.isfinite(values[i]) else (1, 0.0, i))


def top_k(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` best candidates by score (see :func:`rank_order`)."""
    return rank_order(scores)[:k]


def best_top_k(truths: Sequence[float], k: int) -> float | None:
    """The best possible top-k mean: the mean of the ``k`` largest truths (``None`` if empty)."""
    best = sorted((float(t) for t in truths), reverse=True)[:k]
    return math.fsum(best) / len(best) if best else None


def _finite_or_bottom(scores: np.ndarray) -> np.ndarray:
    """Scores with every non-finite value replaced by one value below all finite scores."""
    finite = np.isfinite(scores)
    bottom = scores[finite].min() - 1.0 if finite.any() else 0.0
    return np.where(finite, scores, bottom)


def _correlation(fn: Callable, x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(x, y)[0])
    return value if math.isfinite(value) else None


def rank_metrics(scores: Sequence[float], truths: Sequence[float],
                 ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """Spearman, Kendall tau-b, and for each k the mean true accuracy of the top-k by score
    (``top{k}``; ``None`` when fewer than k scores are finite, since non-finite scores rank
    nothing) beside the best possible top-k mean of the same candidates (``best_top{k}``);
    ``n`` = number of candidates, ``nonfinite`` = how many scores are NaN or infinite.
    ``truths`` must be finite (drop missing ones first, e.g. with :func:`pair_with_truth`)."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(truths, dtype=float)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"{s.shape} scores for {t.shape} truths")
    if not np.isfinite(t).all():
        raise ValueError("true accuracies must be finite; exclude missing ones first")
    filled = _finite_or_bottom(s)
    finite = int(np.isfinite(s).sum())
    out: dict[str, Any] = {
        "n": len(s), "nonfinite": len(s) - finite,
        "spearman": _correlation(stats.spearmanr, filled, t),
        "kendall": _correlation(stats.kendalltau, filled, t),
    }
    order = rank_order(s)
    for k in ks:
        chosen = t[order[:k]]
        out[f"top{k}"] = float(chosen.mean()) if len(chosen) and finite >= min(k, len(s)) \
            else None
        out[f"best_top{k}"] = best_top_k(t, k)
    return out


@dataclass
class Paired:
    """Candidates that have a true accuracy (aligned lists) and the archs that do not."""

    archs: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    truths: list[float] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def pair_with_truth(archs: Sequence[str], scores: Sequence[float],
                    truths: Mapping[str, float | None] | Callable[[str], float | None]) -> Paired:
    """Pair each candidate's score with its true accuracy; candidates whose truth is absent,
    ``None`` or non-finite go to ``missing`` (in candidate order)."""
    if len(archs) != len(scores):
        raise ValueError(f"{len(archs)} archs for {len(scores)} scores")
    get = truths.get if isinstance(truths, Mapping) else truths
    out = Paired()
    for arch, score in zip(archs, scores):
        truth = get(arch)
        if truth is None or not math.isfinite(truth):
            out.missing.append(arch)
            continue
        out.archs.append(arch)
        out.scores.append(float(score))
        out.truths.append(float(truth))
    return out
