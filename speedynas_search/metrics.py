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
- Intervals: a correlation's 95 % interval is a percentile bootstrap over the candidates
  (pairs of score and truth resampled together, :func:`scipy.stats.bootstrap`), seeded, so the
  same scores give the same interval. It shows how much the candidate set alone moves the
  figure; ``None`` when not computed or undefined.
- The top of the ranking: with ``m = ceil(top_fraction * n)``, the true top ``m`` are the
  candidates with the largest truths (ties by candidate order). ``kendall_top`` is Kendall's
  tau-b of score and truth among those ``m`` only (does the estimator order the best archs?),
  ``precision_top`` the share of the estimator's top ``m`` that are in the true top ``m``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["Paired", "best_top_k", "correlation_interval", "difference_interval",
           "finite_or_bottom", "mean_interval", "pair_with_truth", "pooled_interval",
           "rank_metrics", "rank_order", "top_k", "top_of_ranking"]

#: Bootstrap resamples of a correlation's interval (the default of :func:`rank_metrics`).
RESAMPLES = 1000
#: Kendall intervals are computed up to this many candidates (the pair matrices grow as n^2).
KENDALL_INTERVAL_MAX = 2000


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


def finite_or_bottom(scores: np.ndarray) -> np.ndarray:
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


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN where either side is constant)."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (x * y).sum(axis=-1) / norm, np.nan)


def _resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample (rows of ``indices``)."""
    rows = indices.reshape(-1, indices.shape[-1])
    offsets = (np.arange(len(rows)) * n)[:, None]
    counts = np.bincount((rows + offsets).ravel(), minlength=len(rows) * n)
    return counts.reshape(*indices.shape[:-1], n).astype(float)


def _pair_signs(values: np.ndarray) -> np.ndarray:
    """The n x n matrix sign(v_i - v_j)."""
    return np.sign(values[:, None] - values[None, :])


def _spearman_resampled(x: np.ndarray, y: np.ndarray) -> Callable[..., np.ndarray]:
    """Spearman's rho of the resamples given as index rows (average ranks for ties)."""
    def statistic(indices: np.ndarray, axis: int = -1) -> np.ndarray:
        return _pearson_rows(stats.rankdata(x[indices], axis=-1),
                             stats.rankdata(y[indices], axis=-1))
    return statistic


def _kendall_resampled(x: np.ndarray, y: np.ndarray) -> Callable[..., np.ndarray]:
    """Kendall's tau-b of the resamples given as index rows. A resample drawing item i c_i
    times has sum_ij c_i c_j sx_ij sy_ij as its concordant minus discordant pairs (times 2),
    and c^T |sx| c, c^T |sy| c as its pairs untied in x and in y (times 2), so every resample
    costs two matrix products with the original pairs' signs."""
    sx, sy = _pair_signs(x), _pair_signs(y)
    both, untied_x, untied_y = sx * sy, np.abs(sx), np.abs(sy)

    def statistic(indices: np.ndarray, axis: int = -1) -> np.ndarray:
        c = _resample_counts(indices, len(x))

        def form(matrix: np.ndarray) -> np.ndarray:
            return ((c @ matrix) * c).sum(axis=-1)

        norm = np.sqrt(form(untied_x) * form(untied_y))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norm > 0, form(both) / norm, np.nan)
    return statistic


_RESAMPLED = {"spearman": _spearman_resampled, "kendall": _kendall_resampled}


def _undefined(kind: str, y: np.ndarray, *scores: np.ndarray, resamples: int) -> bool:
    """Whether no interval is computed: no resamples, fewer than 3 pairs, constant values, or
    too many pairs for a Kendall interval."""
    return (resamples == 0 or len(y) < 3 or any(np.all(v == v[0]) for v in (y, *scores))
            or (kind == "kendall" and len(y) > KENDALL_INTERVAL_MAX))


def _percentile_bootstrap(sizes: Sequence[int], statistic: Callable[..., np.ndarray],
                          resamples: int, confidence: float, seed: int) -> list[float] | None:
    """The seeded percentile-bootstrap interval of ``statistic`` over resamples of sets of
    ``sizes`` items, each set resampled on its own (one index row per set)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low, high = stats.bootstrap(
            tuple(np.arange(n) for n in sizes), statistic, vectorized=True,
            n_resamples=resamples, confidence_level=confidence, method="percentile",
            random_state=np.random.default_rng(seed)).confidence_interval
    return [float(low), float(high)] if math.isfinite(low) and math.isfinite(high) else None


#: One candidate set: an estimator's scores, a baseline's scores (or ``None``) and the truths.
CandidateSet = tuple[Sequence[float], Sequence[float] | None, Sequence[float]]


def pooled_interval(kind: str, sets: Sequence[CandidateSet], resamples: int = RESAMPLES,
                    confidence: float = 0.95, seed: int = 0) -> list[float] | None:
    """The percentile-bootstrap interval of the mean over candidate sets of each set's
    ``kind`` correlation of scores and truths, minus the baseline's on the same set when one is
    given (paired: both on the same resampled candidates). Each set's candidates are resampled
    on their own (a stratified bootstrap), so the interval is the candidates' noise around a
    mean over several candidate draws. Non-finite scores rank at the bottom; truths must be
    finite. ``None`` when any set's interval is undefined (as in :func:`correlation_interval`).
    """
    parts = []
    for x, baseline, y in sets:
        scores = [finite_or_bottom(np.asarray(v, dtype=float))
                  for v in (x, *([] if baseline is None else [baseline]))]
        y = np.asarray(y, dtype=float)
        if _undefined(kind, y, *scores, resamples=resamples):
            return None
        parts.append([_RESAMPLED[kind](v, y) for v in scores])
    if not parts:
        return None

    def statistic(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        """Per resample: the mean over sets of the score's correlation minus the baseline's."""
        return np.mean([of[0](idx) - sum(o(idx) for o in of[1:])
                        for of, idx in zip(parts, indices)], axis=0)
    return _percentile_bootstrap([len(y) for _, _, y in sets], statistic, resamples,
                                 confidence, seed)


def correlation_interval(kind: str, x: Sequence[float], y: Sequence[float],
                         resamples: int = RESAMPLES, confidence: float = 0.95,
                         seed: int = 0) -> list[float] | None:
    """The percentile-bootstrap ``confidence`` interval ``[low, high]`` of the ``kind``
    (``spearman`` or ``kendall``) correlation of the paired values (pairs resampled together,
    ``resamples`` times, seeded); ``None`` for ``resamples == 0``, fewer than 3 pairs, constant
    values, more than :data:`KENDALL_INTERVAL_MAX` pairs for Kendall, or an undefined interval.
    ``x`` must be finite."""
    return pooled_interval(kind, [(x, None, y)], resamples, confidence, seed)


def difference_interval(kind: str, x: Sequence[float], baseline: Sequence[float],
                        y: Sequence[float], resamples: int = RESAMPLES,
                        confidence: float = 0.95, seed: int = 0) -> list[float] | None:
    """The paired percentile-bootstrap interval of corr(x, y) - corr(baseline, y) (``kind`` and
    ``None`` as in :func:`correlation_interval`): both correlations are taken on the same
    resampled candidates, so the interval is that of the difference on one candidate set,
    narrower than the two separate intervals suggest. Non-finite scores rank at the bottom
    (the module's convention); ``y`` must be finite."""
    return pooled_interval(kind, [(x, baseline, y)], resamples, confidence, seed)


def mean_interval(values: Sequence[float], resamples: int = 10_000, confidence: float = 0.95,
                  seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Mean of ``values`` and its percentile-bootstrap interval (seeded); for fewer than 2
    distinct values the interval is the mean itself, for none everything is ``None``."""
    if not len(values):
        return None, None, None
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(set(data.tolist())) < 2:
        return mean, mean, mean
    ci = stats.bootstrap((data,), np.mean, n_resamples=resamples, method="percentile",
                         confidence_level=confidence,
                         random_state=np.random.default_rng(seed)).confidence_interval
    return mean, float(ci.low), float(ci.high)


def top_of_ranking(scores: np.ndarray, truths: np.ndarray,
                   fraction: float) -> dict[str, float | None]:
    """How the estimator does among the best candidates (module docstring): ``kendall_top``
    among the true top ``ceil(fraction * n)``, and ``precision_top``. ``scores`` finite."""
    m = math.ceil(fraction * len(truths))
    if m == 0:
        return {"kendall_top": None, "precision_top": None}
    best = rank_order(truths)[:m]
    chosen = rank_order(scores)[:m]
    return {"kendall_top": _correlation(stats.kendalltau, scores[best], truths[best]),
            "precision_top": len(set(best) & set(chosen)) / m}


def rank_metrics(scores: Sequence[float], truths: Sequence[float],
                 ks: Sequence[int] = (1, 5, 10), resamples: int = RESAMPLES,
                 top_fraction: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Spearman and Kendall tau-b with their bootstrap 95 % intervals (``spearman_ci``,
    ``kendall_ci``; ``resamples`` = 0 skips them), the top of the ranking (``kendall_top``,
    ``precision_top`` at ``top_fraction``, see the module docstring), and for each k the mean
    true accuracy of the top-k by score (``top{k}``; ``None`` when fewer than k scores are
    finite, since non-finite scores rank nothing) beside the best possible top-k mean of the
    same candidates (``best_top{k}``); ``n`` = number of candidates, ``nonfinite`` = how many
    scores are NaN or infinite. ``truths`` must be finite (drop missing ones first, e.g. with
    :func:`pair_with_truth`)."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(truths, dtype=float)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"{s.shape} scores for {t.shape} truths")
    if not np.isfinite(t).all():
        raise ValueError("true accuracies must be finite; exclude missing ones first")
    filled = finite_or_bottom(s)
    finite = int(np.isfinite(s).sum())
    out: dict[str, Any] = {"n": len(s), "nonfinite": len(s) - finite}
    for kind, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        out[kind] = _correlation(fn, filled, t)
        out[f"{kind}_ci"] = (correlation_interval(kind, filled, t, resamples, seed=seed)
                             if out[kind] is not None else None)
    out.update(top_of_ranking(filled, t, top_fraction))
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
