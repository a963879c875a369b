"""Search strategies in-process: in table mode (the shipped NB201 table as fitness, seconds) and
on a tiny supernet with real fine-tunes; limits, resume after a kill, refusals."""
from __future__ import annotations

import csv
import json
import math
import runpy

import numpy as np
import pytest

import search_spaces
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.errors import SpeedyNASError
from estimators import ESTIMATORS, Candidate, Trajectory, create_estimator, list_estimators
from search_spaces.nb201_table import NB201Truth
from speedynas_search.pareto import pareto_front
from speedynas_search.search_run import Search

from .conftest import REPO, TIMING, run_script, search_config

TABLE = REPO / "configs" / "search_strategies_table.yaml"
SPACE = search_spaces.create("nb201")


def table_search(run_dir, *overrides):
    """A table-mode search (fitness: a table column; no fine-tune) and its records."""
    cfg = search_config(run_dir, "progress=false", *overrides, config=TABLE)
    summary = Search(run_dir, cfg).run()
    out = run_dir / "search" / cfg.name
    return summary, read_jsonl(out / "results.jsonl"), out


def column(name):
    truth = NB201Truth(SPACE, column=name)
    return lambda arch: truth.lookup(arch)


def test_the_table_estimator_reads_its_column_and_says_so():
    estimator = create_estimator("table", column="cifar10_test_12ep_1seed")
    assert estimator.lookup and not estimator.needs and estimator.min_budget() == 0
    assert estimator.describe() == ("table(column=cifar10_test_12ep_1seed) "
                                    "[table lookup, not an estimate]")
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
           "nor_conv_3x3~2|"
    empty = Trajectory(train_losses=[], val_losses=None, val_acc={}, zero_cost={})
    value = estimator.score(empty, Candidate(arch, params=0, flops=None), 0)
    assert value == column("cifar10_test_12ep_1seed")(arch)
    assert "table" in list_estimators() and ESTIMATORS.get("table").lookup


def test_evolution_in_table_mode_spends_its_limit_on_new_archs_and_climbs(tiny_run):
    summary, records, out = table_search(tiny_run, "name=evo", "limit.evaluations=120",
                                         "strategy.population=10", "strategy.children=5")
    strategy = summary["strategy"]
    assert strategy["spent"] == {"evaluations": 120, "steps": 0, "labels": 120,
                                 "seconds": pytest.approx(sum(r["seconds"] for r in records))}
    assert len({r["arch"] for r in records}) == 120  # every child is a new arch
    assert [r["index"] for r in records] == list(range(120))
    # The first 10 are the candidate draw; every later one is one mutation of an earlier one.
    draw = (out / "candidates.txt").read_text().split()
    assert [r["arch"] for r in records[:10]] == draw[:10]
    for record in records[10:]:
        arch = SPACE.parse(record["arch"])
        assert any(str(n) in {r["arch"] for r in records[:record["index"]]}
                   for n in SPACE.neighbours(arch))
    # The incumbent after every evaluation is the best valid-set accuracy so far.
    valid = column("cifar10_valid_val")
    trace = strategy["trace"]
    assert [t["evaluations"] for t in trace] == list(range(1, 121))
    for entry in trace:
        seen = records[:entry["evaluations"]]
        assert entry["score"] == max(valid(r["arch"]) for r in seen)
        assert entry["truth"] == column("cifar10_test")(entry["arch"])
    # Evolution beats the random draw it started from, and the summary marks the lookup.
    assert trace[-1]["truth"] > max(column("cifar10_test")(a) for a in draw[:10])
    assert summary["lookups"] == ["table"] and strategy["fitness_is_table_lookup"]
    assert "[table lookup, not an estimate]" in (out / "summary.md").read_text()
    rows = list(csv.DictReader((out / "incumbent.csv").open()))
    assert [int(r["evaluations"]) for r in rows] == [t["evaluations"] for t in trace]
    assert (out / "incumbent.png").stat().st_size > 10_000


def test_table_mode_evolution_reaches_the_top_of_the_space(tiny_run):
    """With the 200-epoch validation accuracy as fitness, 200 queries find a top-20 arch for
    each of 3 seeds (the issue asks for a mean of 94.2 over 20 seeds: experiments/strategies.py)."""
    truths = []
    for seed in range(3):
        summary, _, _ = table_search(tiny_run, f"name=evo200_{seed}", "limit.evaluations=200",
                                     f"candidates.seed={seed}", f"strategy.seed={seed}")
        truths.append(summary["strategy"]["incumbent"]["truth"])
        assert summary["strategy"]["incumbent"]["space_rank"] <= 20
    assert np.mean(truths) >= 94.2


def test_sample_ranks_the_draw_until_the_limit_is_reached(tiny_run):
    summary, records, out = table_search(tiny_run, "name=sample", "strategy.name=sample",
                                         "limit.evaluations=45", "strategy.batch=10")
    assert [r["arch"] for r in records] == (out / "candidates.txt").read_text().split()[:45]
    assert [t["evaluations"] for t in summary["strategy"]["trace"]] == list(range(1, 46))
    assert summary["n_candidates"] == 45


def test_local_search_climbs_to_local_optima_and_restarts(tiny_run):
    summary, records, _ = table_search(tiny_run, "name=local", "strategy.name=local",
                                       "limit.evaluations=150")
    valid = column("cifar10_valid_val")
    scores = {r["arch"]: valid(r["arch"]) for r in records}
    # Climbs: a start, then neighbourhoods of 24 (less the archs already known).
    starts = [r for r in records if all(str(n) not in scores or r["index"] <= min(
        s["index"] for s in records if s["arch"] == str(n)) for n in SPACE.neighbours(
        SPACE.parse(r["arch"])))]
    assert len(starts) >= 2  # at least one restart within 150 evaluations
    incumbent = summary["strategy"]["incumbent"]
    assert incumbent["score"] == max(scores.values())
    # The incumbent of a finished climb is a local optimum: no evaluated neighbour is better.
    best = SPACE.parse(incumbent["arch"])
    assert all(scores.get(str(n), -math.inf) <= incumbent["score"] for n in SPACE.neighbours(best))


def test_halving_promotes_each_rungs_best_and_counts_its_steps(tiny_run):
    summary, records, _ = table_search(
        tiny_run, "name=halving", "strategy.name=halving", "strategy.sizes=[40,10,3]",
        "strategy.rung_steps=[0,1,2]", "strategy.batch=16")
    assert [r["steps"] for r in records] == [0] * 40 + [1] * 10 + [2] * 3
    valid = column("cifar10_valid_val")
    for lower, upper in ((records[:40], records[40:50]), (records[40:50], records[50:])):
        best = sorted(lower, key=lambda r: (-valid(r["arch"]), r["index"]))[:len(upper)]
        assert [r["arch"] for r in upper] == [r["arch"] for r in best]
    assert summary["strategy"]["spent"]["steps"] == 10 * 1 + 3 * 2
    assert summary["n_candidates"] == 3  # the report compares the final rung


def test_multi_objective_evolution_ends_with_its_pareto_front(tiny_run):
    summary, records, out = table_search(tiny_run, "name=mo", "limit.evaluations=100",
                                         "strategy.objectives=[params]")
    front = summary["strategy"]["fronts"]["params"]
    valid = column("cifar10_valid_val")
    expected = pareto_front([valid(r["arch"]) for r in records],
                            [float(r["params"]) for r in records])
    assert [p["arch"] for p in front["found"]] == [records[i]["arch"] for i in expected]
    assert 0.5 < front["coverage_of_evaluated"] <= 1.0
    assert 0 < front["coverage_of_space"] <= front["coverage_of_evaluated"]
    assert 0.5 < front["coverage_of_evaluated_from_worst"] <= 1.0
    assert front["reference_from_worst"][0] < front["reference"][0]  # worst vs median accuracy
    assert (out / "front_params.png").exists()
    # Selection pressure on size: the front spans small and large networks.
    params = [p["params"] for p in front["found"]]
    assert max(params) > 3 * min(params)


def test_a_killed_evolution_resumes_with_the_same_incumbent_trajectory(tiny_run):
    """Real fine-tunes (tse fitness); the kill leaves a prefix of results.jsonl with a torn
    last line; the resumed run equals an uninterrupted one."""
    common = ("strategy.name=evolution", "strategy.population=4", "strategy.tournament=2",
              "strategy.children=3", "finetune.budgets=[3]", "estimators.names=[tse, params]",
              "limit.steps=45", "ground_truth.source=nb201", "progress=false", "threads=1",
              "count_flops=false")
    whole = Search(tiny_run, search_config(tiny_run, "name=whole", *common)).run()
    assert whole["strategy"]["spent"]["evaluations"] == 15  # 45 steps of 3
    cfg = search_config(tiny_run, "name=killed", *common)
    Search(tiny_run, cfg).run()
    results = tiny_run / "search" / "killed" / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:8]) + lines[8][:40])
    resumed = Search(tiny_run, cfg).run()

    def untimed(trace):
        return [{k: v for k, v in t.items() if k != "seconds"} for t in trace]

    assert untimed(resumed["strategy"]["trace"]) == untimed(whole["strategy"]["trace"])
    got, want = (read_jsonl(tiny_run / "search" / n / "results.jsonl")
                 for n in ("killed", "whole"))
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in got] == \
           [{k: v for k, v in r.items() if k not in TIMING} for r in want]


def test_a_larger_limit_continues_the_search_where_it_stopped(tiny_run):
    first, _, _ = table_search(tiny_run, "name=grow", "limit.evaluations=40")
    grown, records, _ = table_search(tiny_run, "name=grow", "limit.evaluations=80")
    fresh, reference, _ = table_search(tiny_run, "name=grow_ref", "limit.evaluations=80")
    assert [r["arch"] for r in records] == [r["arch"] for r in reference]
    assert grown["strategy"]["incumbent"]["arch"] == fresh["strategy"]["incumbent"]["arch"]
    assert first["strategy"]["trace"] == grown["strategy"]["trace"][:len(first["strategy"]
                                                                          ["trace"])]


@pytest.mark.parametrize("overrides, fragment", [
    (("limit.evaluations=null",), "runs until a limit stops it: set limit.evaluations"),
    (("limit.evaluations=null", "limit.steps=1000"), "does not bound evaluations"),
    (("strategy.fitness=tse",), "fitness 'tse' is not in estimators.names"),
    (("strategy.population=2000",), "starts from 2000 candidates but candidates.num=1000"),
    (("strategy.tournament=30",), "strategy.tournament=30 must be at most"),
    (("strategy.objectives=[flops]",), "need(s) FLOPs: set count_flops=true"),
    (("strategy.name=halving", "strategy.sizes=[10,20]", "strategy.rung_steps=[0,1]"),
     "must decrease"),
    (("strategy.name=local", "strategy.population=3"), "'population' is an option of strategy "
                                                       "evolution"),
])
def test_bad_strategy_settings_are_refused_naming_them(tiny_run, overrides, fragment):
    with pytest.raises(SpeedyNASError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        table_search(tiny_run, "name=bad", *overrides)


@pytest.mark.parametrize("overrides, old_key, new_key", [
    (("limit.evaluations=null", "budget.evaluations=60"), "budget", "limit.evaluations"),
    (("strategy.name=halving", "strategy.sizes=[10,2]", "strategy.budgets=[0,1]"),
     "strategy.budgets", "strategy.rung_steps"),
])
def test_renamed_keys_are_refused_in_one_line_naming_the_new_key(tiny_run, overrides, old_key,
                                                                 new_key):
    with pytest.raises(SpeedyNASError) as refusal:
        table_search(tiny_run, "name=renamed", *overrides)
    message = str(refusal.value)
    assert "\n" not in message and f"unknown key '{old_key}'" in message, message
    assert new_key in message, message
    assert not (tiny_run / "search" / "renamed").exists()


def test_a_learned_fitness_is_refused(tiny_run):
    with pytest.raises(SpeedyNASError, match="fitted on ground truth"):
        Search(tiny_run, search_config(
            tiny_run, "name=learned", "estimators.names=[combo_learned(tse+params)]",
            "ground_truth.source=nb201", "limit.evaluations=10", "strategy.name=evolution"))


def test_a_strategy_changed_on_resume_is_refused(tiny_run):
    table_search(tiny_run, "name=changed", "limit.evaluations=20")
    with pytest.raises(SpeedyNASError, match="differs in: strategy.seed"):
        table_search(tiny_run, "name=changed", "limit.evaluations=20", "strategy.seed=5")


def test_summary_json_is_strict(tiny_run):
    _, _, out = table_search(tiny_run, "name=strict", "limit.evaluations=20")
    json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)


def test_local_and_halving_with_real_fine_tunes(tiny_run):
    """On the tiny supernet: halving fine-tunes each rung for its own steps (zero-cost only at
    B=0); local search's incumbent is the best TSE it evaluated."""
    common = ("progress=false", "threads=1", "count_flops=false", "ground_truth.source=nb201",
              "finetune.budgets=[2]", "estimators.names=[tse, synflow, combo(tse+synflow)]")
    halving = Search(tiny_run, search_config(
        tiny_run, "name=real_halving", *common, "strategy.name=halving",
        "strategy.sizes=[12,4,2]", "strategy.rung_steps=[0,2,4]",
        "strategy.rung_fitness=[synflow,combo(tse+synflow),tse]")).run()
    records = read_jsonl(tiny_run / "search" / "real_halving" / "results.jsonl")
    assert [r["steps"] for r in records] == [0] * 12 + [2] * 4 + [4] * 2
    assert all(len(r["trajectory"]["train_losses"]) == r["steps"] for r in records)
    assert all("synflow" in r["trajectory"]["zero_cost"] for r in records)
    assert halving["strategy"]["spent"]["steps"] == 4 * 2 + 2 * 4
    assert halving["strategy"]["incumbent"]["fitness"] == "tse"
    assert halving["best"]["arch"] == halving["strategy"]["incumbent"]["arch"]
    local = Search(tiny_run, search_config(
        tiny_run, "name=real_local", *common, "strategy.name=local",
        "strategy.fitness=tse", "limit.evaluations=30")).run()
    records = read_jsonl(tiny_run / "search" / "real_local" / "results.jsonl")
    best = max(records, key=lambda r: (r["scores"]["tse"]["2"], -r["index"]))
    assert local["strategy"]["incumbent"]["arch"] == best["arch"]
    assert len(records) == 30


@pytest.mark.e2e
def test_the_strategies_benchmark_writes_its_table_and_resumes(tiny_run, tmp_path):
    args = ("experiments/strategies.py", "--modes", "table", "--run-dir", str(tiny_run),
            "--table-seeds", "2", "--arms", "evolution-valid", "sample-12ep",
            "--out", str(tmp_path))
    first = run_script(*args)
    table = (tmp_path / "table_table.md").read_text()
    rows = list(csv.DictReader((tmp_path / "table_runs.csv").open()))
    assert [(r["arm"], r["seed"]) for r in rows] == [  # the arms in their listed order
        ("sample-12ep", "0"), ("sample-12ep", "1"), ("evolution-valid", "0"),
        ("evolution-valid", "1")]
    for row in rows:
        summary = json.loads((tiny_run / "search" / f"table-{row['arm']}-s{row['seed']}" /
                              "summary.json").read_text())
        assert float(row["truth"]) == summary["strategy"]["incumbent"]["truth"]
        assert float(row["best_evaluated"]) == summary["best_possible"]["top1"] >= float(
            row["truth"])
        incumbent = summary["strategy"]["incumbent"]  # the fitness at the final fidelity:
        final = summary["metrics"][incumbent["fitness"]][str(incumbent["budget"])]
        assert float(row["fitness_spearman"]) == final["spearman"] > 0.5  # a table column
    assert "| evolution-valid | table cifar10_valid_val | 2 |" in table
    assert (tmp_path / "incumbent_table.png").stat().st_size > 10_000
    again = run_script(*args)  # finished searches are not run again
    assert again.stdout == first.stdout


def test_choose_combo_averages_its_metrics_over_tuning_searches(tiny_run, capsys, monkeypatch):
    _, _, out = table_search(tiny_run, "name=tuning", "strategy.name=sample",
                                   "limit.evaluations=60", "estimators.names=[table,params]")
    summary = json.loads((out / "summary.json").read_text())
    capsys.readouterr()  # the search's own report
    argv = ["choose_combo.py", str(out), str(out), "--members", "table", "params",
            "--max-members", "2", "--by", "kendall_top"]
    monkeypatch.setattr("sys.argv", argv)
    assert runpy.run_path(str(REPO / "experiments" / "choose_combo.py"))["main"](argv[1:]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines
            if line.startswith(("table ", "params ", "combo("))}
    assert set(rows) == {"table", "params", "combo(table+params)"}
    for name in ("table", "params"):  # the mean over two copies of one search is that search
        metrics = summary["metrics"][name][str(max(summary["budgets"]))]
        assert rows[name][:3] == [round(metrics[k], 3)
                                  for k in ("spearman", "kendall", "kendall_top")]
    order = [line.split()[0] for line in lines if line.split()[0] in rows]
    assert [rows[n][2] for n in order] == sorted((rows[n][2] for n in order), reverse=True)
