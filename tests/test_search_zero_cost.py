"""search.py with zero-cost estimators only (no fine-tune at all) and with combinations."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from speedynas_core.atomic_io import read_jsonl
from estimators.combo import rank_mean

from .conftest import NB201_TABLE, assert_one_line_error
from .conftest import run_script as run
from .test_search import SEARCH_TOY

pytestmark = pytest.mark.e2e

ZERO_COST = ["grad_norm", "snip", "synflow", "jacov", "nwot"]


@pytest.fixture(scope="module")
def toy_run(toy_supernet) -> Path:
    """The shared toy supernet."""
    return toy_supernet


def _search(run_dir: Path, *overrides: str, check: bool = True):
    return run("search.py", "--run-dir", str(run_dir), "--config", str(SEARCH_TOY),
               "retrain.enabled=false", *overrides, check=check)


@pytest.mark.parametrize("weights", ["init", "inherited"])
def test_zero_cost_only_search_does_not_fine_tune(toy_run, weights):
    names = f"[{', '.join(ZERO_COST)}, params]"
    proc = _search(toy_run, f"name=zc_{weights}", "candidates.num=4", f"estimators.names={names}",
                   f"zero_cost.weights={weights}", "zero_cost.batches=2")
    assert proc.stdout.count("zero-cost only: no fine-tuning") == 1
    out = toy_run / "search" / f"zc_{weights}"
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == 4
    for record in results:
        assert record["trajectory"]["train_losses"] == [] and record["train_seconds"] == 0.0
        assert set(record["zero_cost_seconds"]) == set(ZERO_COST)
        for name in ZERO_COST:
            value = record["trajectory"]["zero_cost"][name]
            assert record["scores"][name] == {"2": value, "4": value}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["finetune"] == "zero-cost only: no fine-tuning"
    assert summary["settings"]["zero_cost"].startswith(f"{weights} weights")
    assert ("stand-alone network C=16, N=5" in summary["settings"]["zero_cost"]) == (
        weights == "init")  # the benchmark's network by default
    assert set(summary["zero_cost_seconds_per_candidate"]) == set(ZERO_COST)
    fronts = summary["pareto"]["fronts"]
    assert set(fronts) == {*ZERO_COST, "params"} and summary["pareto"]["budget"] == 4
    assert all(fronts[name]["params"] for name in ZERO_COST)
    assert (out / "pareto_params.png").stat().st_size > 1000
    assert (out / "pareto_flops.png").stat().st_size > 1000
    assert "## Pareto fronts" in (out / "summary.md").read_text()


def test_search_with_rank_and_learned_combinations(toy_run):
    _search(toy_run, "name=combo", "estimators.names=[tse, params, nwot, combo, combo_learned]",
            "estimators.combo.members=[tse, params, nwot]", "estimators.combo_learned={members: "
            "[tse, params, nwot], fit_size: 5}",
            "--ground-truth", str(NB201_TABLE))
    out = toy_run / "search" / "combo"
    results = read_jsonl(out / "results.jsonl")
    assert all(len(r["trajectory"]["train_losses"]) == 4 and "nwot" in r["trajectory"]["zero_cost"]
               for r in results)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["estimators"][3] == \
        "combo(members=tse+params+nwot, method=rank_mean)"
    assert summary["learned"] == {"combo_learned": {"fitted": 5}}
    assert summary["metrics"]["combo_learned"]["4"]["n"] == 12 - 5
    assert summary["metrics"]["combo"]["4"]["n"] == 12
    # The rank mean, recomputed from the per-candidate scores, gives the combo's Pareto front.
    combo = rank_mean([[r["scores"][m]["4"] for r in results] for m in ("tse", "params", "nwot")])
    front = summary["pareto"]["fronts"]["combo"]["params"]
    by_arch = {r["arch"]: value for r, value in zip(results, combo)}
    assert all(p["score"] == pytest.approx(by_arch[p["arch"]]) for p in front)
    assert all(math.isfinite(p["score"])
               for p in summary["pareto"]["fronts"]["combo_learned"]["params"])
    assert "combo_learned *" in (out / "summary.md").read_text()


def test_learned_combination_without_ground_truth_is_refused(toy_run):
    proc = _search(toy_run, "name=nogt", "estimators.names=[tse, combo_learned]", check=False)
    assert_one_line_error(proc, "'combo_learned' is fitted on ground truth",
                          "ground_truth.source")


def test_init_network_size_with_inherited_weights_is_refused(toy_run):
    proc = _search(toy_run, "name=zc_refused", "zero_cost.weights=inherited", "zero_cost.C=8",
                   check=False)
    assert_one_line_error(proc, "zero_cost.C", "zero_cost.weights=init")
    assert not (toy_run / "search" / "zc_refused" / "results.jsonl").exists()
