"""The best-ranked candidate line printed after the search table (``best_ranked``,
``format_best``) and its place in summary.md."""
from __future__ import annotations

import math

from speedynas_search.report import best_ranked, format_best, format_markdown
from speedynas_search.results_store import Record


def _results(scores: list[float]) -> list[Record]:
    return [Record(index=i, arch=f"a{i}", steps=100, params=1, flops=None, seconds=0.0,
                   scores={"tse": {"100": s}}, trajectory={}) for i, s in enumerate(scores)]


TRUTHS = {"a0": 90.0, "a1": 93.0, "a2": 85.0, "a3": 91.0}


def test_best_ranked_candidate_and_its_ranks() -> None:
    best = best_ranked(_results([0.1, 0.2, 0.9, 0.5]), TRUTHS, "tse", 100,
                       space_values=[94.0, 93.0, 85.0, 80.0, math.nan])
    assert best == {"estimator": "tse", "budget": 100, "arch": "a2", "score": 0.9,
                    "truth": 85.0, "rank": 4, "of": 4, "space_rank": 3, "space_size": 4}
    text = format_best(best)
    assert text.splitlines()[0] == "best-ranked by tse (B=100): a2"
    assert "true accuracy 85.00: rank 4 of 4 candidates" in text
    assert "rank 3 of 4 in the search space (top 75.0 %)" in text


def test_ties_go_to_the_earlier_candidate_and_non_finite_scores_last() -> None:
    best = best_ranked(_results([math.nan, 0.5, 0.5, -1.0]), TRUTHS, "tse", 100)
    assert best["arch"] == "a1" and best["rank"] == 1 and "space_rank" not in best
    assert "search space" not in format_best(best)
    assert best_ranked(_results([math.nan, math.inf]), TRUTHS, "tse", 100) is None
    assert format_best(None) == "best-ranked arch: none (no finite score)"


def test_without_ground_truth() -> None:
    best = best_ranked(_results([0.3, 0.1]), {}, "tse", 100, space_values=[90.0])
    assert best["truth"] is None and "rank" not in best
    assert format_best(best).endswith("true accuracy n/a (no ground truth for it: see --ground-truth)")


def test_summary_markdown_shows_it() -> None:
    summary = {"settings": {}, "n_candidates": 4, "n_evaluated": 4, "n_missing": 0,
               "missing": [], "estimators": ["tse"], "budgets": [100], "ks": [10],
               "best_possible": {"top10": 89.75},
               "metrics": {"tse": {"100": {"spearman": 0.1, "kendall": 0.0, "top10": 89.75}}},
               "best": best_ranked(_results([0.1, 0.2, 0.9, 0.5]), TRUTHS, "tse", 100)}
    assert "best-ranked by tse (B=100): a2; true accuracy 85.00" in format_markdown(summary)
