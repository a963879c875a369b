"""Ranking metrics on hand-made examples, and the search report (summary, table, plots)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.atomic_io import append_jsonl, atomic_write_json
from core.errors import SpeedyNASError
from estimators import Trajectory
from search_pipeline import (
    pair_with_truth,
    plot_correlation_vs_budget,
    plot_scores,
    rank_metrics,
    rank_order,
    summarize,
    top_k,
    write_summary,
)
from search_pipeline.report import format_table, log_figures, nonfinite_warnings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- metrics

def test_perfect_and_reversed_rankings() -> None:
    truths = [90.0, 91.5, 89.0, 93.0, 92.2, 88.1]
    perfect = rank_metrics([t * 2 - 5 for t in truths], truths)
    reverse = rank_metrics([-t for t in truths], truths)
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["kendall"] == pytest.approx(1.0)
    assert reverse["spearman"] == pytest.approx(-1.0) and reverse["kendall"] == pytest.approx(-1.0)
    assert perfect["top1"] == perfect["best_top1"] == 93.0
    top5 = (93 + 92.2 + 91.5 + 90 + 89) / 5
    assert perfect["top5"] == perfect["best_top5"] == pytest.approx(top5)
    assert reverse["top1"] == 88.1 and perfect["n"] == 6


def test_ties_hand_computed() -> None:
    # score ranks (1, 2.5, 2.5, 4) vs truth ranks (1, 2, 3, 4):
    # Spearman = 4.5 / sqrt(4.5 * 5); Kendall tau-b: 5 concordant, 0 discordant, 1 pair tied in
    # score only -> 5 / sqrt((6 - 1) * 6)
    m = rank_metrics([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    assert m["spearman"] == pytest.approx(4.5 / math.sqrt(22.5))
    assert m["kendall"] == pytest.approx(5 / math.sqrt(30))
    # one discordant pair, ties in truth: scores (1,2,3,4), truths (2,1,3,3)
    # truth ranks (2,1,3.5,3.5): Spearman = cov 3.5 / sqrt(var 5 * var 4.5);
    # pairs: (0,1) d, (2,3) tied in truth, other 4 concordant -> (4 - 1) / sqrt(6 * 5)
    m = rank_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 3.0, 3.0])
    assert m["spearman"] == pytest.approx(3.5 / math.sqrt(22.5))
    assert m["kendall"] == pytest.approx(3 / math.sqrt(30))


def test_top_k_and_best_possible() -> None:
    scores = [0.1, 0.9, 0.5, 0.9, float("nan")]
    truths = [90.0, 91.0, 92.0, 93.0, 94.0]
    # order: 1 (0.9), 3 (0.9, later candidate), 2, 0, then the NaN
    assert rank_order(scores) == [1, 3, 2, 0, 4] and top_k(scores, 2) == [1, 3]
    m = rank_metrics(scores, truths, ks=(1, 2, 3, 10))
    assert m["top1"] == 91.0 and m["top2"] == 92.0 and m["top3"] == 92.0
    assert m["best_top1"] == 94.0 and m["best_top2"] == 93.5 and m["best_top3"] == 93.0
    assert m["best_top10"] == 92.0 and m["top10"] is None  # k > n would need the NaN score
    assert rank_metrics(scores[:4], truths[:4], ks=(10,))["top10"] == 91.5  # k > n: all of them


def test_ties_in_score_broken_by_candidate_order() -> None:
    assert rank_metrics([0.5, 0.5, 0.1], [80.0, 90.0, 70.0], ks=(1,))["top1"] == 80.0
    assert rank_metrics([0.5, 0.5, 0.1], [90.0, 80.0, 70.0], ks=(1,))["top1"] == 90.0


def test_non_finite_scores_rank_last() -> None:
    truths = [1.0, 2.0, 3.0, 4.0, 5.0]
    m = rank_metrics([float("nan"), float("-inf"), 3.0, 4.0, 5.0], truths, ks=(1, 3))
    # the two non-finite scores tie at the bottom: ranks (1.5, 1.5, 3, 4, 5)
    assert m["spearman"] == pytest.approx(rank_metrics([0, 0, 3, 4, 5], truths)["spearman"])
    assert m["top3"] == 4.0
    assert rank_order([float("inf"), 1.0, float("nan"), 2.0]) == [3, 1, 0, 2]


def test_undefined_correlations_are_none() -> None:
    assert rank_metrics([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["spearman"] is None
    single = rank_metrics([1.0], [90.0])
    assert single["kendall"] is None and single["top1"] == 90.0
    empty = rank_metrics([], [])
    assert empty["n"] == 0 and empty["top1"] is None and empty["best_top1"] is None
    with pytest.raises(ValueError, match="finite"):
        rank_metrics([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError):
        rank_metrics([1.0, 2.0], [1.0])


def test_pair_with_truth() -> None:
    truths = {"a": 90.0, "b": None, "d": float("nan"), "e": 80.0}
    paired = pair_with_truth(["a", "b", "c", "d", "e"], [1, 2, 3, 4, 5], truths)
    assert paired.archs == ["a", "e"] and paired.scores == [1.0, 5.0]
    assert paired.truths == [90.0, 80.0] and paired.missing == ["b", "c", "d"]
    assert pair_with_truth(["a", "c"], [1, 2], truths.get).missing == ["c"]


# --------------------------------------------------------------------------- report

ESTIMATORS = ["tse", "valacc", "params"]
BUDGETS = [2, 4]


def _results() -> tuple[list[dict], dict[str, float]]:
    """12 candidates; arch11 has no ground truth; tse is perfect at B=4, params reversed, one
    valacc score is NaN (null in JSON)."""
    results, truths = [], {}
    for i in range(12):
        arch = f"arch{i}"
        truth = 85.0 + 0.7 * i + (0.3 if i % 3 else 0.0)
        if i != 11:
            truths[arch] = truth
        results.append({
            "arch": arch, "params": 1000 * (12 - i), "flops": 5000 * (12 - i), "seconds": 1.0,
            "scores": {
                "tse": {"2": -10.0 + 0.1 * i * (-1) ** i, "4": -20.0 + truth / 10},
                "valacc": {"2": 50.0 + (i % 4), "4": None if i == 3 else 60.0 + i},
                "params": {"2": 1000 * (12 - i), "4": 1000 * (12 - i)},
            }})
    return results, truths


def test_summarize_and_write_summary(tmp_path: Path) -> None:
    results, truths = _results()
    settings = {"space": "nb201", "supernet": {"epochs": 20, "width": 8}, "finetune_lr": 0.003}
    summary = summarize(results, truths, ESTIMATORS, BUDGETS, settings)
    assert summary["n_candidates"] == 12 and summary["n_evaluated"] == 11
    assert summary["n_missing"] == 1 and summary["missing"] == ["arch11"]
    tse4 = summary["metrics"]["tse"]["4"]
    assert set(tse4) >= {"n", "spearman", "kendall", "top1", "top5", "top10", "best_top1",
                         "best_top5", "best_top10"}
    assert tse4["n"] == 11 and tse4["spearman"] == pytest.approx(1.0)
    assert tse4["top10"] == tse4["best_top10"] == summary["best_possible"]["top10"]
    assert summary["metrics"]["params"]["2"]["spearman"] == pytest.approx(-1.0)
    best10 = sum(sorted(truths.values(), reverse=True)[:10]) / 10
    assert summary["best_possible"]["top10"] == pytest.approx(best10)

    json_path, md_path = write_summary(summary, tmp_path / "search")
    loaded = json.loads(json_path.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert loaded["metrics"]["valacc"]["4"]["n"] == 11 and loaded["settings"] == settings
    md = md_path.read_text()
    assert "supernet.epochs: 20" in md and "finetune_lr: 0.003" in md and "`arch11`" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(ESTIMATORS)  # header + one row per estimator
    assert rows[0].split("|")[1].strip() == "estimator"
    assert [r.split("|")[1].strip() for r in rows[1:]] == ESTIMATORS
    assert rows[1].count("|") == 2 + 3 * len(BUDGETS)
    assert "Spearman B=4" in rows[0] and "top-10 B=2" in rows[0]
    assert md.rstrip().splitlines()[-1] == f"best possible top-10: {best10:.2f}"
    assert format_table(summary) in md


def test_summarize_missing_score_is_named() -> None:
    results, truths = _results()
    del results[5]["scores"]["tse"]["4"]
    with pytest.raises(SpeedyNASError, match=r"arch5 has no 'tse' score at B=4"):
        summarize(results, truths, ESTIMATORS, BUDGETS, {})


def test_plots_are_png(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    results, truths = _results()
    summary = summarize(results, truths, ESTIMATORS, BUDGETS, {})
    scores_png, corr_png = tmp_path / "scores_B4.png", tmp_path / "spearman_vs_budget.png"
    fig1 = plot_scores(results, truths, ESTIMATORS, 4, scores_png)
    fig2 = plot_correlation_vs_budget(summary, corr_png)
    for path in (scores_png, corr_png):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    titles = [ax.get_title() for ax in fig1.axes if ax.get_visible()]
    assert len(titles) == 3 and titles[0] == "tse (B=4): Spearman 1.00"
    assert "1 non-finite" in titles[1]
    assert len(fig2.axes[0].get_lines()) == len(ESTIMATORS) + 1  # + the zero line
    writer = SummaryWriter(str(tmp_path / "tb"))
    log_figures(writer, {"search/scores": fig1, "search/spearman": fig2})
    writer.close()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())


def test_non_finite_scores_give_no_top_k_a_count_and_a_warning():
    truths = [90.0, 80.0, 70.0, 60.0]
    all_nan = rank_metrics([math.nan] * 4, truths, ks=(1, 3))
    assert all_nan["nonfinite"] == 4 and all_nan["top1"] is None and all_nan["top3"] is None
    two = rank_metrics([1.0, math.nan, 0.5, math.inf], truths, ks=(1, 3))
    assert two["nonfinite"] == 2 and two["top1"] == 90.0 and two["top3"] is None
    archs = ["a", "b", "c", "d"]
    results = [{"arch": a, "params": 1, "flops": 1, "scores": {"tse": {"4": s}}}
               for a, s in zip(archs, [math.nan, None, 1.0, 2.0])]
    summary = summarize(results, dict(zip(archs, truths)), ["tse"], [4], {})
    assert summary["nonfinite"] == {"tse": 2}
    assert nonfinite_warnings(summary) == [
        "warning: tse gave 2 of 4 candidates a non-finite score at B=4 (a diverging fine-tune? "
        "try a lower finetune.lr); they rank last"]


def test_results_and_summaries_are_strict_json(tmp_path):
    record = {"scores": {"tse": {"4": math.nan}}, "trajectory": {"train_losses": [1.0, math.inf]}}
    append_jsonl(tmp_path / "results.jsonl", record)
    line = (tmp_path / "results.jsonl").read_text()

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    back = json.loads(line, parse_constant=refuse)
    assert back["scores"]["tse"]["4"] is None
    assert math.isnan(Trajectory.from_dict(back["trajectory"]).train_losses[1])
    atomic_write_json(tmp_path / "summary.json", {"spearman": math.nan})
    assert json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse) == {
        "spearman": None}
