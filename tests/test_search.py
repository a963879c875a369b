"""search.py end to end on real CIFAR-10 images and the NB201 table; resume; bad input."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import yaml

from speedynas_core.atomic_io import read_jsonl
from speedynas_core.config import load_config
from speedynas_search.search_config import SearchConfig
from speedynas_search.search_run import Search
from supernet import tensor_snapshot

from .conftest import (
    CIFAR10_DIR,
    NB201_TABLE,
    NB301_TABLE,
    REPO,
    TIMING,
    assert_one_line_error,
    wait_until,
)
from .conftest import run_script as run

# search.py runs and searches of the toy supernet that train.py trains (conftest).
pytestmark = pytest.mark.e2e

SEARCH_TOY = REPO / "configs" / "search_toy.yaml"


def toy_config(*overrides: str) -> SearchConfig:
    """configs/search_toy.yaml with ``overrides``, for a search of the toy NB201 supernet."""
    return load_config(SearchConfig, SEARCH_TOY, list(overrides), context={"space": "nb201"})


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_search_end_to_end_with_table_and_retraining(toy_supernet):
    proc = run("search.py", "--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY),
               "--ground-truth", str(NB201_TABLE))
    out = toy_supernet / "search"
    results = read_jsonl(out / "results.jsonl")
    assert [r["index"] for r in results] == list(range(12))
    table = json.loads(NB201_TABLE.read_text())["archs"]
    for record in results:
        assert record["params"] == table[record["arch"]]["params_cifar10"]
        assert set(record["scores"]) == set(toy_config().estimators.names)
        assert len(record["trajectory"]["train_losses"]) == 4
        tse = record["scores"]["tse"]
        assert tse["2"] == pytest.approx(-sum(record["trajectory"]["train_losses"][:2]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_candidates"] == 12 and summary["n_missing"] == 0
    assert summary["metrics"]["params"]["4"]["spearman"] > 0.3  # params is a real baseline
    for name, metrics in summary["metrics"].items():
        assert -1 <= metrics["4"]["spearman"] <= 1
    retrain = summary["retrain"]
    assert 2 <= len(retrain["archs"]) <= 2 * 9
    assert all(0 <= a["test_acc"] <= 100 and a["table"] == table[arch]["cifar10_test"]
               for arch, a in retrain["archs"].items())
    md = (out / "summary.md").read_text()
    assert "| tse " in md and "Top-k retrained" in md and "best possible top-10" in md
    assert (out / "scores_vs_truth.png").stat().st_size > 1000
    assert (out / "correlation_vs_budget.png").stat().st_size > 1000
    csv_rows = (out / "scores.csv").read_text().splitlines()
    assert len(csv_rows) == 13 and csv_rows[1].startswith(f"{results[0]['arch']},")
    assert "| tse " in proc.stdout
    # A rerun finds everything done: same results, retraining cached.
    run("search.py", "--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY),
        "--ground-truth", str(NB201_TABLE))
    assert read_jsonl(out / "results.jsonl") == results


def test_supernet_is_bit_identical_after_a_search(toy_supernet):
    cfg = toy_config("name=identity", "retrain.enabled=false", "candidates.num=4")
    search = Search(toy_supernet, cfg)
    before = tensor_snapshot(search.net)
    search.run()
    after = search.net.state_dict()
    assert all(after[k].equal(v) for k, v in before.items())


def test_killed_search_resumes_to_the_same_results(toy_supernet):
    candidates, kill_after = 16, 4
    common = ["--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY), "retrain.enabled=false",
              f"candidates.num={candidates}", "finetune.budgets=[8, 16]"]
    whole = run("search.py", *common, "name=whole")
    assert whole.returncode == 0
    cmd = [sys.executable, str(REPO / "search.py"), *common, "name=killed"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = toy_supernet / "search" / "killed" / "results.jsonl"
    wait_until(lambda: results.exists() and len(results.read_text().splitlines()) >= kill_after,
               proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = read_jsonl(results)
    assert kill_after <= len(partial) < candidates
    run("search.py", *common, "name=killed")
    expected = read_jsonl(toy_supernet / "search" / "whole" / "results.jsonl")
    assert without_timing(read_jsonl(results)) == without_timing(expected)


def test_finished_search_is_rescored_with_new_estimators_without_fine_tuning(toy_supernet):
    """Changing only the estimator list rescores the stored trajectories (and measures added
    zero-cost proxies) instead of fine-tuning again; the result equals a fresh search."""
    common = ["retrain.enabled=false", "candidates.num=8", "finetune.budgets=[4]",
              "ground_truth.source=nb201"]
    first = toy_config("name=rescore", *common, "estimators.names=[tse, sovl, params]")
    Search(toy_supernet, first).run()
    out = toy_supernet / "search" / "rescore"
    fine_tuned = read_jsonl(out / "results.jsonl")
    names = ("estimators.names=[tse, params, combo(tse+params), 'combo(sovl, params)', tse_ema, "
             "nwot, combo(nwot+tse)]")
    second = toy_config("name=rescore", *common, names)
    search = Search(toy_supernet, second)
    search.runner.evaluate = None  # a rescore must not fine-tune anything
    summary = search.run()
    rescored = read_jsonl(out / "results.jsonl")
    for before, after in zip(fine_tuned, rescored):
        assert after["trajectory"] == {**before["trajectory"],
                                       "zero_cost": {"nwot": after["trajectory"]["zero_cost"]["nwot"]}}
    assert [r["scores"]["tse"] for r in rescored] == [r["scores"]["tse"] for r in fine_tuned]
    assert all(set(r["scores"]) == {"tse", "params", "tse_ema", "nwot"} for r in rescored)
    assert list(summary["metrics"]) == ["tse", "params", "combo(tse+params)",
                                        "combo(sovl+params)", "tse_ema", "nwot",
                                        "combo(nwot+tse)"]
    # The combinations and the zero-cost proxy measured afterwards match a fresh search's,
    # which fine-tunes from scratch and measures nwot before its updates.
    fresh = Search(toy_supernet, toy_config("name=fresh", *common, names)).run()
    assert fresh["metrics"] == summary["metrics"]
    assert all(m["4"]["spearman"] is not None for m in summary["metrics"].values())
    fresh_records = read_jsonl(toy_supernet / "search" / "fresh" / "results.jsonl")
    assert without_timing(fresh_records) == without_timing(rescored)


def test_rescoring_needs_the_records_that_were_kept(toy_supernet):
    common = ["--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY), "name=norecords",
              "retrain.enabled=false", "candidates.num=3", "finetune.budgets=[4]"]
    run("search.py", *common, "estimators.names=[tse]")
    assert_one_line_error(run("search.py", *common, "estimators.names=[sovl]", check=False),
                          "'sovl'", "needs validation losses", "use another name=")
    assert_one_line_error(run("search.py", *common, "estimators.names=[tse]", "finetune.lr=0.5",
                              check=False), "differs in: finetune.lr")
    assert_one_line_error(run("search.py", *common, "estimators.names=[tse, 'combo(tse+)']",
                              check=False), "combo(tse+)", "separated by '+'")
    assert_one_line_error(run("search.py", *common, "estimators.names=[tse, tse]", check=False),
                          "lists tse more than once")


def test_unfinished_supernet_is_refused(tmp_path):
    run_dir = tmp_path / "empty"
    assert_one_line_error(run("search.py", "--run-dir", str(run_dir), check=False), "not a training run dir")


def test_bad_search_inputs_are_refused(toy_supernet, tmp_path):
    base = ["--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY), "name=bad"]
    bad_table = tmp_path / "table.json"
    bad_table.write_text(json.dumps([1, 2, 3]))
    assert_one_line_error(run("search.py", *base, "--ground-truth", str(bad_table), check=False),
                    str(bad_table))
    assert_one_line_error(run("search.py", *base, "estimators.names=[tse, tsee]", check=False),
                    "unknown estimator 'tsee'", "tse_ema")
    assert_one_line_error(run("search.py", *base, "finetune.budgets=[1000]", check=False),
                    "B=1000", "512 images")
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n\n|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    assert_one_line_error(run("search.py", *base, f"candidates.file={candidates}", check=False),
                    f"{candidates}:3:", "unknown NB201 op 'conv'")
    assert not (toy_supernet / "search" / "bad" / "results.jsonl").exists()
    retry = run("search.py", *base, "finetune.budgets=[2]", "retrain.enabled=false",
                "candidates.num=2")  # the corrected command is not refused as another config
    assert "| tse " in retry.stdout


def test_darts_search_against_the_nb301_surrogate_table(tmp_path, nb301_table):
    run_dir, config = tmp_path / "darts", tmp_path / "darts_toy.yaml"
    toy = yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())
    config.write_text(yaml.safe_dump({**toy, "model": {"space": "darts", "C": 4, "layers": 3}}))
    run("train.py", "--config", str(config), "--run-dir", str(run_dir),
        f"data.root={CIFAR10_DIR}", "optim.epochs=1", "log.probe_archs=1")
    candidates = tmp_path / "genotypes.txt"
    chosen = sorted(nb301_table)[:6]
    candidates.write_text("\n".join(chosen) + "\n")
    search_config = tmp_path / "search_darts_toy.yaml"
    search_toy = yaml.safe_load(SEARCH_TOY.read_text())
    retrain = {k: v for k, v in search_toy["retrain"].items() if k != "N"}  # an NB201 size key
    search_config.write_text(yaml.safe_dump({**search_toy, "retrain": retrain}))
    run("search.py", "--run-dir", str(run_dir), "--config", str(search_config),
        f"candidates.file={candidates}", "ground_truth.source=table",
        f"ground_truth.path={NB301_TABLE}", "ground_truth.column=val_accuracy_nb301_surrogate",
        "retrain={top_k: 1, C: 4, layers: 3, train_size: 128, test_size: 64}",
        "estimators.names=[tse, valacc, params]")
    summary = json.loads((run_dir / "search" / "summary.json").read_text())
    assert summary["n_candidates"] == 6 and summary["n_missing"] == 0
    assert summary["settings"]["space"] == "darts"
    assert set(summary["retrain"]["archs"]) <= set(chosen)
    for arch, row in summary["retrain"]["archs"].items():
        assert row["table"] == nb301_table[arch]["val_accuracy_nb301_surrogate"]
