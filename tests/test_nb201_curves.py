"""The matched-scale learning curves: the training that makes them (resumable, bit for bit), the
shipped table built from the committed records, and the ground-truth source serving it."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

import search_spaces
from search_spaces import create_ground_truth
from search_spaces.nb201_curves import CURVES_PATH, EPOCH_METRICS, load_curves, read_curves
from search_spaces.nb201_table import write_table
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.errors import SpeedyNASError
from .conftest import CIFAR10_DIR, REPO, load_script, run_script


RECORDS = REPO / "results" / "matched_scale" / "archs"
matched_scale = load_script("experiments/matched_scale.py")
build_nb201_curves = load_script("scripts/build_nb201_curves.py")


def _records() -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in RECORDS.glob("*.json")),
                  key=lambda r: r["position"])


def test_shipped_table_is_the_committed_records_rebuilt():
    """Building the table again from results/matched_scale/archs gives the shipped bytes, and
    every value in it is the record's."""
    records = build_nb201_curves.read_records(RECORDS)
    arrays, meta = build_nb201_curves.build(records, build_nb201_curves.records_digest(RECORDS))
    meta["command"] = load_curves().meta["command"]
    buffer = io.BytesIO()
    write_table(buffer, arrays, meta)
    assert buffer.getvalue() == CURVES_PATH.read_bytes(), \
        "rebuild it: python scripts/build_nb201_curves.py"
    curves = load_curves()
    space = search_spaces.create("nb201")
    assert list(curves.archs) == [r["arch"] for r in records]
    for i, record in enumerate(records):
        assert curves.rows[i] == space.index_of(space.parse(record["arch"]))
        for metric in EPOCH_METRICS:
            assert curves.epoch[metric][i].tolist() == [h[metric] for h in record["history"]]
        assert curves.final["val_acc_all"][i] == record["final"]["val_acc_all"]
        np.testing.assert_allclose(curves.minibatch_loss[i], record["minibatch_loss"], rtol=1e-6)
        assert len(record["history"]) == curves.epochs == record["recipe"]["epochs"]


def test_records_are_the_reported_draw_in_order():
    """The trained cells are the seed-123 candidate draw of the committed search, in order."""
    archs = matched_scale.read_archs(REPO / "results/table2/randnas/scores.csv", 100)
    records = _records()
    assert records and all(r["arch"] == archs[r["position"]] for r in records)
    assert len({r["position"] for r in records}) == len(records)


def test_ground_truth_serves_the_columns():
    """``nb201_c8n1`` looks up the last epoch's test accuracy, the whole-half validation
    accuracy and early-stopped epochs; a cell not trained is unknown."""
    record = _records()[0]
    test = create_ground_truth("nb201_c8n1", space="nb201")
    assert test.lookup(record["arch"]) == record["history"][-1]["test_acc"]
    val = create_ground_truth("nb201_c8n1", space="nb201", column="val_acc")
    assert val.lookup(record["arch"]) == record["final"]["val_acc_all"]
    early = create_ground_truth("nb201_c8n1", space="nb201", column="test_acc@3")
    assert early.lookup(record["arch"]) == record["history"][2]["test_acc"]
    trained = set(load_curves().archs)
    space = search_spaces.create("nb201")
    other = next(str(a) for a in space.enumerate() if str(a) not in trained)
    assert test.lookup(other) is None
    assert len(test) == len(trained)


@pytest.mark.e2e
def test_a_search_ranks_against_the_curves_by_name(toy_supernet, tmp_path):
    """search.py takes the curve table as its ground truth by name, an early-stopped column
    included, and scores its estimators against those values."""
    from scipy.stats import spearmanr
    archs = [r["arch"] for r in _records()[:10]]
    (tmp_path / "cells.txt").write_text("\n".join(archs) + "\n")
    run_script("search.py", "--run-dir", str(toy_supernet), "--config",
               str(REPO / "configs" / "search_toy.yaml"), "name=c8n1", "retrain.enabled=false",
               "progress=false", f"candidates.file={tmp_path / 'cells.txt'}",
               "finetune.budgets=[4]", "estimators.names=[params]",
               "ground_truth.source=nb201_c8n1", "ground_truth.column=test_acc@6")
    out = toy_supernet / "search" / "c8n1"
    summary = json.loads((out / "summary.json").read_text())
    records = {r["arch"]: r for r in read_jsonl(out / "results.jsonl")}
    truth = {r["arch"]: r["history"][5]["test_acc"] for r in _records()[:10]}
    params = [records[a]["scores"]["params"]["4"] for a in archs]
    assert summary["metrics"]["params"]["4"]["spearman"] == pytest.approx(
        spearmanr(params, [truth[a] for a in archs]).statistic)
    assert summary["metrics"]["params"]["4"]["best_top1"] == max(truth.values())


@pytest.mark.parametrize("column", ["test_acc@0", "test_acc@99", "loss@2", "accuracy"])
def test_bad_columns_are_refused_naming_them(column):
    with pytest.raises(SpeedyNASError, match=column):
        create_ground_truth("nb201_c8n1", space="nb201", column=column)


def test_other_spaces_are_refused():
    with pytest.raises(SpeedyNASError, match="darts"):
        create_ground_truth("nb201_c8n1", space="darts")


def test_builder_refuses_mixed_recipes_and_repeated_cells(tmp_path):
    first = sorted(RECORDS.glob("*.json"))[0]
    shutil.copy(first, tmp_path / "000.json")
    record = json.loads(first.read_text())
    (tmp_path / "001.json").write_text(json.dumps({**record, "position": 1}))
    with pytest.raises(SpeedyNASError, match="twice"):
        build_nb201_curves.read_records(tmp_path)
    other = {**record, "position": 1, "arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
             "recipe": {**record["recipe"], "lr": 0.1}}
    (tmp_path / "001.json").write_text(json.dumps(other))
    with pytest.raises(SpeedyNASError, match="recipes"):
        build_nb201_curves.read_records(tmp_path)


def test_reader_refuses_a_table_whose_archs_disagree(tmp_path):
    records = build_nb201_curves.read_records(RECORDS)
    arrays, meta = build_nb201_curves.build(records, "x")
    meta["archs"] = list(reversed(meta["archs"]))
    if len(meta["archs"]) > 1:
        path = tmp_path / "bad.npz"
        with path.open("wb") as handle:
            write_table(handle, arrays, meta)
        with pytest.raises(SpeedyNASError, match="archs"):
            read_curves(path)


@pytest.mark.e2e
def test_a_killed_training_resumes_bit_for_bit(tmp_path, monkeypatch):
    """Training stopped after its first epoch's checkpoint continues to exactly the numbers of
    an uninterrupted run."""
    trainer = matched_scale.MatchedScaleTrainer(str(CIFAR10_DIR), epochs=2, train_size=256)
    arch = _records()[0]["arch"]
    whole = trainer.train(arch, tmp_path / "whole.pt", minibatch_epochs=1)
    saved = matched_scale.save_checkpoint

    def save_then_die(state, path):
        saved(state, path)
        raise KeyboardInterrupt
    monkeypatch.setattr(matched_scale, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(arch, tmp_path / "cut.pt", minibatch_epochs=1)
    monkeypatch.setattr(matched_scale, "save_checkpoint", saved)
    resumed = trainer.train(arch, tmp_path / "cut.pt", minibatch_epochs=1)
    strip = lambda r: [{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]]
    assert strip(resumed) == strip(whole)
    assert resumed["minibatch_loss"] == whole["minibatch_loss"]
    assert resumed["final"] == whole["final"]
    assert len(whole["minibatch_loss"]) == 256 // 64
    assert whole["recipe"]["train_size"] == 256


def test_the_report_measures_what_it_says(tmp_path):
    """The report's correlations are those of the curves themselves: the ceiling against
    NB201, TSE after T epochs (the sum of the epoch losses), TSE after B minibatches, and the
    one-shot scores of the committed searches, each with its interval; its files are written."""
    from scipy.stats import spearmanr
    report = load_script("experiments/matched_scale_report.py")
    curves = load_curves()
    result = report.report(curves, REPO / "results" / "table2", tmp_path)
    final = curves.column("test_acc")
    nb201 = search_spaces.create("nb201").ground_truth("cifar10_test").lookup_many(curves.archs)
    ceiling = result["ceiling"]["matched_vs_nb201"]
    assert ceiling["spearman"] == pytest.approx(spearmanr(final, nb201).statistic)
    low, high = ceiling["spearman_ci"]
    assert low <= ceiling["spearman"] <= high
    t = 3
    tse = -curves.epoch["train_loss"][:, :t].sum(axis=1)
    row = next(r for r in result["figure1"]
               if r["unit"] == "epoch" and r["at"] == t and r["estimator"] == "tse")
    assert row["spearman"] == pytest.approx(spearmanr(tse, final).statistic)
    row = next(r for r in result["figure1"]
               if r["unit"] == "minibatch" and r["at"] == 100 and r["estimator"] == "tse")
    assert row["spearman"] == pytest.approx(
        spearmanr(-curves.minibatch_loss[:, :100].sum(axis=1), final).statistic)
    scores, budgets = report.read_scores(REPO / "results/table2/randnas/scores.csv")
    assert budgets == [100, 200, 300]
    row = next(r for r in result["one_shot"] if r["sampler"] == "randnas"
               and r["estimator"] == "tse" and r["budget"] == 100)
    assert row["matched"]["spearman"] == pytest.approx(spearmanr(
        [scores[a]["tse@B100"] for a in curves.archs], final).statistic)
    assert row["nb201"]["spearman"] == pytest.approx(spearmanr(
        [scores[a]["tse@B100"] for a in curves.archs], nb201).statistic)
    # the paired difference of the two truths, its interval against a plain bootstrap here
    assert row["scale"]["spearman"] == pytest.approx(
        row["matched"]["spearman"] - row["nb201"]["spearman"])
    tse = np.array([scores[a]["tse@B100"] for a in curves.archs])
    rng = np.random.default_rng(1)
    draws = [spearmanr(tse[i], final[i]).statistic - spearmanr(tse[i], np.array(nb201)[i]).statistic
             for i in rng.integers(0, len(tse), size=(2000, len(tse)))]
    assert row["scale"]["spearman_ci"] == pytest.approx(np.percentile(draws, [2.5, 97.5]), abs=0.03)
    for name in ("report.md", "report.json", "curves.png", "figure1.png", "settling.csv",
                 "figure1.csv", "lce.csv", "one_shot.csv"):
        assert (tmp_path / name).stat().st_size > 0
