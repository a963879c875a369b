"""Ranking metrics on hand-made examples, and the search report (summary, table, plots)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from speedynas_core.atomic_io import append_jsonl, atomic_write_json
from speedynas_core.errors import SpeedyNASError
from estimators import Trajectory
from speedynas_search import (
    metrics,
    pair_with_truth,
    plot_correlation_vs_budget,
    plot_scores,
    rank_metrics,
    rank_order,
    summarize,
    top_k,
    write_summary,
)
from search_spaces.nb201_table import load_table
from speedynas_search.plots import log_figures
from speedynas_search.results_store import Record
from speedynas_search.report import (
    format_table,
    nonfinite_warnings,
    value_with_interval,
    with_interval,
)

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


def test_resampled_correlations_equal_scipy_on_each_resample() -> None:
    rng = np.random.default_rng(3)
    truths = rng.normal(size=60)
    scores = np.round(truths + rng.normal(size=60), 1)  # rounding makes ties
    resamples = rng.integers(0, 60, size=(5, 60))
    kendall = metrics._kendall_resampled(scores, truths)(resamples)
    spearman = metrics._spearman_resampled(scores, truths)(resamples)
    for i, rows in enumerate(resamples):
        assert kendall[i] == pytest.approx(stats.kendalltau(scores[rows], truths[rows])[0])
        assert spearman[i] == pytest.approx(stats.spearmanr(scores[rows], truths[rows])[0])


def test_intervals_on_the_nb201_table_hold_the_estimate_repeat_and_narrow() -> None:
    """Parameter count against NB201 test accuracy: the interval holds the point estimate, the
    same candidates give the same interval, and 16x the candidates narrow it about 4x."""
    table = load_table()
    truth, params = table.column("cifar10_test"), table.column("params_cifar10")
    rng = np.random.default_rng(0)
    widths = {}
    for n in (50, 800):
        rows = rng.choice(len(truth), size=n, replace=False)
        m = rank_metrics(params[rows], truth[rows])
        for kind in ("spearman", "kendall"):
            low, high = m[f"{kind}_ci"]
            assert low < m[kind] < high
            widths[kind, n] = high - low
        assert rank_metrics(params[rows], truth[rows])["spearman_ci"] == m["spearman_ci"]
        assert rank_metrics(params[rows], truth[rows], resamples=0)["kendall_ci"] is None
    for kind in ("spearman", "kendall"):
        assert 2.5 < widths[kind, 50] / widths[kind, 800] < 6.5


def test_paired_difference_interval_on_the_nb201_table() -> None:
    """FLOPs and params against NB201 test accuracy on 200 archs: the paired interval of the
    difference holds the point difference and is far narrower than the separate intervals
    suggest (both are measured on the same archs); an estimator minus itself is exactly 0."""
    table = load_table()
    truth, params = table.column("cifar10_test"), table.column("params_cifar10")
    rows = np.random.default_rng(1).choice(len(truth), size=200, replace=False)
    noisy = params[rows] * np.random.default_rng(2).lognormal(0, 0.5, size=200)
    a, b = rank_metrics(noisy, truth[rows]), rank_metrics(params[rows], truth[rows])
    low, high = metrics.difference_interval("spearman", noisy, params[rows], truth[rows])
    assert low < a["spearman"] - b["spearman"] < high
    assert high < 0  # multiplying in noise makes params worse, beyond doubt
    separate = sum(m["spearman_ci"][1] - m["spearman_ci"][0] for m in (a, b))
    assert high - low < 0.6 * separate
    assert metrics.difference_interval("kendall", params[rows], params[rows],
                                       truth[rows]) == [0.0, 0.0]
    assert metrics.difference_interval("spearman", noisy, params[rows], truth[rows],
                                       resamples=0) is None
    with_inf = noisy.copy()
    with_inf[0] = -np.inf  # a non-finite score ranks at the bottom, as in rank_metrics
    bottom = noisy.copy()
    bottom[0] = noisy.min() - 1
    assert metrics.difference_interval("spearman", with_inf, params[rows], truth[rows]) == \
        metrics.difference_interval("spearman", bottom, params[rows], truth[rows])


def test_pooled_interval_over_candidate_draws_of_the_nb201_table() -> None:
    """Three draws of 200 NB201 archs: the stratified interval of the mean paired difference
    holds the mean of the three point differences; with one draw it is the paired interval
    itself; three copies of one draw narrow it by about sqrt(3) (independent resamples); the
    reversed comparison mirrors it; draws of different sizes pool."""
    table = load_table()
    truth, params = table.column("cifar10_test"), table.column("params_cifar10")
    rng = np.random.default_rng(3)
    draws = [rng.choice(len(truth), size=size, replace=False) for size in (200, 200, 150)]
    noise = [rng.lognormal(0, 0.5, size=len(rows)) for rows in draws]
    sets = [(params[rows] * n, params[rows], truth[rows]) for rows, n in zip(draws, noise)]
    low, high = metrics.pooled_interval("spearman", sets)
    point = np.mean([rank_metrics(x, t)["spearman"] - rank_metrics(b, t)["spearman"]
                     for x, b, t in sets])
    assert low < point < high < 0
    assert metrics.pooled_interval("spearman", sets[:1]) == \
        metrics.difference_interval("spearman", *sets[0])
    one = np.diff(metrics.pooled_interval("kendall", sets[:1]))[0]
    three = np.diff(metrics.pooled_interval("kendall", sets[:1] * 3))[0]
    assert 1.4 < one / three < 2.2
    mirrored = metrics.pooled_interval("spearman", [(b, x, t) for x, b, t in sets])
    assert mirrored == pytest.approx([-high, -low], abs=1e-9)
    alone = metrics.pooled_interval("spearman", [(x, None, t) for x, _, t in sets])
    means = np.mean([rank_metrics(x, t)["spearman"] for x, _, t in sets])
    assert alone[0] < means < alone[1]
    assert metrics.pooled_interval("spearman", sets, resamples=0) is None
    assert metrics.pooled_interval("spearman", []) is None


def test_top_of_the_ranking_hand_computed() -> None:
    truths = [float(t) for t in range(20)]  # the true top 10 %: candidates 19 and 18
    scores = list(truths)
    scores[19], scores[18] = 18.0, 19.0  # the best two swapped
    m = rank_metrics(scores, truths)
    assert m["kendall_top"] == pytest.approx(-1.0) and m["precision_top"] == 1.0
    scores[19] = 0.5  # the best arch now ranks near the bottom
    m = rank_metrics(scores, truths, top_fraction=0.2)  # top 4: 19, 18, 17, 16
    assert m["precision_top"] == 0.75  # the estimator's top 4: 18, 17, 16, 15
    assert m["kendall_top"] == pytest.approx(stats.kendalltau([0.5, 19, 17, 16],
                                                             [19, 18, 17, 16])[0])
    assert rank_metrics([], [])["precision_top"] is None


def test_mean_interval() -> None:
    assert metrics.mean_interval([]) == (None, None, None)
    assert metrics.mean_interval([2.0, 2.0]) == (2.0, 2.0, 2.0)
    mean, low, high = metrics.mean_interval([93.1, 93.9, 94.2, 93.6])
    assert mean == pytest.approx(93.7) and 93.1 <= low < mean < high <= 94.2



def test_values_are_printed_with_their_intervals() -> None:
    assert value_with_interval(93.4367, (93.3, 93.66), 2) == "93.44 [93.30, 93.66]"
    assert value_with_interval(3.2, (1.0, 5.4), 0) == "3 [1, 5]"
    assert value_with_interval(0.71249, None, 3) == "0.712"
    assert value_with_interval(None, None, 2) == "n/a"
    metric = {"spearman": 0.71249, "spearman_ci": [0.6412, 0.7731], "kendall": 0.5}
    assert with_interval(metric, "spearman") == "0.712 [0.64, 0.77]"
    assert with_interval(metric, "kendall", 2) == "0.50"

# --------------------------------------------------------------------------- report

ESTIMATORS = ["tse", "valacc", "params"]
BUDGETS = [2, 4]


def _results() -> tuple[list[Record], dict[str, float]]:
    """12 candidates; arch11 has no ground truth; tse is perfect at B=4, params reversed, one
    valacc score is NaN (null in JSON)."""
    results, truths = [], {}
    for i in range(12):
        arch = f"arch{i}"
        truth = 85.0 + 0.7 * i + (0.3 if i % 3 else 0.0)
        if i != 11:
            truths[arch] = truth
        results.append(Record(
            index=i, arch=arch, steps=4, params=1000 * (12 - i), flops=5000 * (12 - i),
            seconds=1.0, trajectory={}, scores={
                "tse": {"2": -10.0 + 0.1 * i * (-1) ** i, "4": -20.0 + truth / 10},
                "valacc": {"2": 50.0 + (i % 4), "4": None if i == 3 else 60.0 + i},
                "params": {"2": 1000 * (12 - i), "4": 1000 * (12 - i)},
            }))
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
    table, top = format_table(summary).split(f"best possible top-10: {best10:.2f}")
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(ESTIMATORS)  # header + one row per estimator
    assert rows[0].split("|")[1].strip() == "estimator"
    assert [r.split("|")[1].strip() for r in rows[1:]] == ESTIMATORS
    assert rows[1].count("|") == 2 + 3 * len(BUDGETS)
    assert "Spearman B=4" in rows[0] and "top-10 B=2" in rows[0]
    interval = summary["metrics"]["valacc"]["4"]["spearman_ci"]
    assert f"[{interval[0]:.2f}, {interval[1]:.2f}]" in rows[2]
    top_rows = [line for line in top.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in top_rows[1:]] == ESTIMATORS
    assert "Kendall in top 10 % B=4" in top_rows[0] and "precision@10 % B=2" in top_rows[0]
    assert format_table(summary) in md


def test_summarize_missing_score_is_named() -> None:
    results, truths = _results()
    del results[5].scores["tse"]["4"]
    with pytest.raises(SpeedyNASError, match=r"arch5 has no 'tse' score at B=4"):
        summarize(results, truths, ESTIMATORS, BUDGETS, {})


def test_plots_are_png(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    results, truths = _results()
    summary = summarize(results, truths, ESTIMATORS, BUDGETS, {})
    scores_png, corr_png = tmp_path / "scores_B4.png", tmp_path / "spearman_vs_budget.png"
    fig1 = plot_scores(results, truths, summary, 4, scores_png)
    fig2 = plot_correlation_vs_budget(summary, corr_png)
    for path in (scores_png, corr_png):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    titles = [ax.get_title() for ax in fig1.axes if ax.get_visible()]
    assert len(titles) == 3 and titles[0] == "tse (B=4): Spearman 1.000 [1.00, 1.00]"
    assert "1 non-finite" in titles[1]
    # rank against rank: tse is perfect (the diagonal), params reversed
    tse_points = fig1.axes[0].collections[0].get_offsets()
    assert (tse_points[:, 0] == tse_points[:, 1]).all() and len(tse_points) == 11
    params_points = fig1.axes[2].collections[0].get_offsets()
    assert (params_points[:, 0] + params_points[:, 1] == 12).all()
    marked = plot_scores(results, truths, summary, 4, scores_png, marked={"arch0", "arch11"})
    crosses = marked.axes[0].collections[1].get_offsets()
    assert crosses.tolist() == [[11, 11]]  # arch0 is worst by both; arch11 has no truth
    labels = [t.get_text() for t in fig2.legends[0].get_texts()]
    assert labels == ESTIMATORS  # one legend beside the axes, one distinct style each
    lines = [c for c in fig2.axes[0].containers]
    styles = {(c.lines[0].get_color(), c.lines[0].get_marker(), c.lines[0].get_linestyle())
              for c in lines}
    assert len(styles) == len(ESTIMATORS)
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
    results = [Record(index=i, arch=a, steps=4, params=1, flops=1, seconds=0.0,
                      scores={"tse": {"4": s}}, trajectory={})
               for i, (a, s) in enumerate(zip(archs, [math.nan, None, 1.0, 2.0]))]
    summary = summarize(results, dict(zip(archs, truths)), ["tse"], [4], {})
    assert summary["nonfinite"] == {"tse": 2}
    assert nonfinite_warnings(summary) == [
        "warning: tse gave 2 of 4 candidates a non-finite score at B=4 (a diverging fine-tune? "
        "try a lower finetune.lr; or a zero-cost proxy undefined for the arch, such as jacov of "
        "a disconnected cell); they rank last"]


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


def test_scores_csv_round_trips_every_score_and_truth() -> None:
    import csv
    import io

    from speedynas_search.report import scores_csv

    results, truths = _results()
    rows = list(csv.DictReader(io.StringIO(scores_csv(results, truths, ESTIMATORS, BUDGETS))))
    assert [r["arch"] for r in rows] == [r.arch for r in results]
    assert list(rows[0]) == ["arch", "params", "flops", "truth", "tse@B2", "tse@B4", "valacc@B2",
                             "valacc@B4", "params@B2", "params@B4"]
    for row, record in zip(rows, results):
        assert int(row["params"]) == record.params and int(row["flops"]) == record.flops
        for name in ESTIMATORS:
            for budget in BUDGETS:
                value = record.scores[name][str(budget)]
                cell = row[f"{name}@B{budget}"]
                assert cell == "" if value is None else float(cell) == value
    assert rows[11]["truth"] == "" and float(rows[0]["truth"]) == truths["arch0"]
