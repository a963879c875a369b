"""Predictor-guided search (strategy ``guided``) and the labels it pays for, in table mode:
labels are the shipped NB201 table's validation accuracy, features the cells' graph features
and size (free), judged by the test accuracy."""
from __future__ import annotations

import json
import math

import pytest

import search_spaces
from search_spaces import TableObjective
from search_spaces.nb201_extra_tables import NB201RobustnessTruth
from search_spaces.nb201_table import NB201Truth
from speedynas_core.atomic_io import append_jsonl, read_jsonl
from speedynas_core.errors import SpeedyNASError
from speedynas_search.labels import LabelBook, stored_labels
from speedynas_search.search_run import Search

from .conftest import REPO, search_config

GUIDED = REPO / "configs" / "search_strategies_guided.yaml"
SPACE = search_spaces.create("nb201")
VALID = NB201Truth(SPACE, column="cifar10_valid_val")
TEST = NB201Truth(SPACE, column="cifar10_test")
FREE = ("estimators.names=[params]", "strategy.signals=[graph, size]")
SMALL = ("strategy.labels=12", "strategy.initial=4", "strategy.pool=20", "strategy.batch=4",
         "strategy.mutations=10")


def guided_search(run_dir, *overrides):
    """A guided table-mode search; its summary, records, labels and folder."""
    cfg = search_config(run_dir, "progress=false", *FREE, *overrides, config=GUIDED)
    summary = Search(run_dir, cfg).run()
    out = run_dir / "search" / cfg.name
    return (summary, read_jsonl(out / "results.jsonl"), read_jsonl(out / "labels.jsonl"), out)


def test_guided_spends_exactly_its_labels_and_keeps_the_best_labelled(tiny_run):
    summary, records, labels, _ = guided_search(tiny_run, "name=guided", *SMALL)
    strategy = summary["strategy"]
    assert strategy["spent"]["labels"] == 12 and len(labels) == 12
    assert strategy["spent"]["evaluations"] == 20 + 2 * 10 == len(records)
    archs = [line["arch"] for line in labels]
    assert len(set(archs)) == 12 and set(archs) <= {r["arch"] for r in records}
    assert [line["label"] for line in labels] == pytest.approx([VALID.lookup(a) for a in archs])
    assert archs[:4] == [r["arch"] for r in records[:4]]  # the initial labels: the draw's first
    best = max(labels, key=lambda line: line["label"])
    incumbent = strategy["incumbent"]
    assert incumbent["arch"] == best["arch"] and incumbent["fitness"] == "label"
    assert incumbent["truth"] == pytest.approx(TEST.lookup(best["arch"]))
    counts = [t["labels"] for t in strategy["trace"] if "labels" in t]
    assert counts == sorted(counts) and counts[-1] == 12


@pytest.mark.e2e  # three searches, about 15 s
def test_guided_finds_better_archs_than_its_random_initial_labels(tiny_run):
    """Over three seeds the labels the predictor chose beat the uniform initial ones."""
    for seed in (0, 1, 2):
        _, _, labels, _ = guided_search(tiny_run, f"name=better{seed}", f"candidates.seed={seed}",
                                        f"strategy.seed={seed}", "strategy.labels=26",
                                        "strategy.initial=10", "strategy.pool=40",
                                        "strategy.batch=4", "strategy.mutations=20")
        initial = [line["label"] for line in labels[:10]]
        chosen = [line["label"] for line in labels[10:]]
        assert sum(chosen) / len(chosen) > sum(initial) / len(initial)


def test_a_warm_start_labels_the_pools_best_by_its_estimator_first(tiny_run):
    _, records, labels, _ = guided_search(tiny_run, "name=warm", *SMALL,
                                          "strategy.warm_start=params")
    pool = records[:20]
    largest = sorted(pool, key=lambda r: (-r["params"], r["index"]))
    assert [line["arch"] for line in labels[:4]] == list(dict.fromkeys(
        r["arch"] for r in largest))[:4]


def test_a_rank_combination_is_a_signal_ranked_over_everything_evaluated(tiny_run):
    summary, _, labels, _ = guided_search(
        tiny_run, "name=joint", *SMALL, "estimators.names=[params, combo(params)]",
        "strategy.signals=[graph, combo(params)]")
    assert summary["strategy"]["spent"]["labels"] == len(labels) == 12


def test_guided_with_an_objective_labels_along_the_front(tiny_run):
    """With the free Pixel 3 latency next to the label, the found front is among the labelled
    archs, by their labels, and is measured against the space's true front."""
    summary, _, labels, _ = guided_search(
        tiny_run, "name=front", *SMALL, "strategy.objectives=[pixel3_latency_cifar10]",
        "strategy.acquisition=ucb")
    front = summary["strategy"]["fronts"]["pixel3_latency_cifar10"]
    labelled = {line["arch"]: line["label"] for line in labels}
    assert front["found"] and all(p["arch"] in labelled for p in front["found"])
    assert all(p["score"] == pytest.approx(labelled[p["arch"]]) for p in front["found"])
    assert 0 < front["hypervolume_fraction_from_worst"] <= 1


def test_the_prior_predictor_shrinks_towards_the_first_estimator_signal(tiny_run, monkeypatch):
    """With predictor=prior the prior column is the first estimator signal's (after the block
    columns), whatever blocks come first."""
    from speedynas_search.strategies import guided as guided_module
    made = []

    def recording(name, **options):
        made.append((name, options))
        return guided_module.create_predictor.__wrapped__(name, **options)
    recording.__wrapped__ = guided_module.create_predictor
    monkeypatch.setattr(guided_module, "create_predictor", recording)
    summary, _, labels, _ = guided_search(tiny_run, "name=prior", *SMALL,
                                          "strategy.predictor=prior",
                                          "strategy.signals=[size, params, graph]")
    assert summary["strategy"]["spent"]["labels"] == len(labels) == 12
    fitted = [options for name, options in made if "prior" in options]
    size_columns = 2  # params and FLOPs
    graph_columns = len(SPACE.graph_features(SPACE.parse(labels[0]["arch"])))
    assert fitted and all(o["prior"] == size_columns + graph_columns for o in fitted)


def test_a_rerun_replays_its_labels_and_a_foreign_label_file_is_refused(tiny_run):
    first, _, labels, out = guided_search(tiny_run, "name=replay", *SMALL)
    again, _, relabelled, _ = guided_search(tiny_run, "name=replay", *SMALL)
    assert relabelled == labels
    assert again["strategy"]["incumbent"] == first["strategy"]["incumbent"]
    lines = (out / "labels.jsonl").read_text().splitlines()
    lines[5] = json.dumps({**json.loads(lines[5]), "arch": json.loads(lines[6])["arch"]})
    (out / "labels.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(SpeedyNASError, match=r"labels.jsonl: label 5 is of .* the labels "
                                             "belong to another search"):
        guided_search(tiny_run, "name=replay", *SMALL)


@pytest.mark.parametrize("overrides, fragment", [
    (("strategy.signals=[table]",), "'table' is a table lookup, the truth itself"),
    (("strategy.signals=[graphs]",), "'graphs' is neither a block"),
    (("strategy.signals=[combo_learned(params)]",), "is fitted on the truth"),
    (("strategy.signals=[graph, graph]",), "must list distinct features"),
    (("strategy.initial=20", "strategy.labels=10"), "strategy.initial=20 must be at most"),
    (("strategy.predictor=svm",), "unknown predictor 'svm'; registered: ensemble, gbt, prior, rf"),
    (("strategy.objectives=[pixel3_latency_cifar10]", "strategy.acquisition=ei"),
     "acquisition=ei has no multi-objective form"),
    (("strategy.objectives=[pixel3_latency_cifar10, params]", "strategy.acquisition=mean"),
     "takes at most one objective"),
    (("strategy.objectives=[pixel4_latency]", "strategy.acquisition=mean"),
     "unknown objective 'pixel4_latency'"),
    (("strategy.objectives=[pgd@Linf_eps-1.0]", "strategy.paid_objectives=[pgd@Linf_eps-1.0]",
      "strategy.acquisition=mean"), r"repeats pgd@Linf_eps-1.0 of strategy.objectives: an "
                                    "objective is either free or paid"),
    (("strategy.objectives=[pixel3_latency_cifar10]", "strategy.paid_objectives=[val_accs]",
      "strategy.acquisition=mean"), r"with strategy.paid_objectives=\['val_accs'\]: guided "
                                    "search takes at most one objective"),
    (("strategy.paid_objectives=[params]", "strategy.acquisition=mean"),
     "strategy.paid_objectives: 'params' is measured by the search for every arch, free"),
    (("strategy.paid_objectives=[pgd]", "strategy.acquisition=mean"),
     "strategy.paid_objectives: unknown objective 'pgd' for the nb201 space; valid"),
    (("strategy.paid_objectives=[pgd@Linf_eps-1.0]", "strategy.acquisition=ei"),
     "acquisition=ei has no multi-objective"),
    (("strategy.predictor=prior",), r"strategy.predictor=prior shrinks towards the first "
                                    r"estimator signal .*strategy.signals lists none"),
])
def test_bad_guided_settings_are_refused_naming_them(tiny_run, overrides, fragment):
    with pytest.raises(SpeedyNASError, match=fragment) as refusal:
        cfg = search_config(tiny_run, "progress=false", *FREE, "name=bad", *overrides,
                            config=GUIDED)
        Search(tiny_run, cfg)
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("overrides, fragment", [
    (("strategy.name=guided",), "strategy 'guided' pays for labels: set labels.source"),
    (("labels.source=nb201", "labels.column=cifar10_valid_val", "limit.evaluations=10"),
     "labels.source is set, but strategy 'evolution' uses no labels"),
])
def test_labels_go_with_a_strategy_that_pays_for_them(tiny_run, overrides, fragment):
    cfg = search_config(tiny_run, "progress=false", "name=unlabelled", *overrides,
                        config=REPO / "configs" / "search_strategies_table.yaml")
    with pytest.raises(SpeedyNASError, match=fragment):
        Search(tiny_run, cfg)


class _Known:
    """A label source knowing two archs."""

    name = "known"
    values = {"a": 1.0, "b": 3.0}

    def lookup(self, arch):
        return self.values.get(str(arch))


def test_label_book_counts_records_and_replays(tmp_path):
    book = LabelBook(_Known(), tmp_path / "labels.jsonl")
    values = book.label(["a", "c", "b", "a"])
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [3.0, 1.0]
    assert book.count == 4 and book.best() == (2, "b", 3.0)
    assert [line["arch"] for line in read_jsonl(tmp_path / "labels.jsonl")] == list("acba")
    _Known.values = {}  # the source changed: a replay still answers from the file
    replay = LabelBook(_Known(), tmp_path / "labels.jsonl")
    assert replay.label(["a", "c"])[0] == 1.0 and replay.label(["b"]) == [3.0]
    append_jsonl(tmp_path / "other.jsonl", {"index": 0, "arch": "z", "label": 1.0})
    with pytest.raises(SpeedyNASError, match="label 0 is of z, but the strategy now asks for a"):
        LabelBook(_Known(), tmp_path / "other.jsonl").label(["a"])


# Paid objectives: the accuracy under PGD attack (eps 1/255) comes with each label.
ROBUST = "pgd@Linf_eps-1.0"
ROBUSTNESS = search_spaces.create_ground_truth("nb201_robustness", space=SPACE, column=ROBUST)
PAID = (f"strategy.paid_objectives=[{ROBUST}]", "strategy.acquisition=mean")


@pytest.fixture
def robustness_reads(monkeypatch):
    """Every arch the robustness table is asked for, one entry per lookup (``lookup_many``
    too), while the fixture is active."""
    reads: list[str] = []
    one, many = NB201RobustnessTruth.lookup, NB201RobustnessTruth.lookup_many

    def lookup(self, arch):
        reads.append(str(arch))
        return one(self, arch)

    def lookup_many(self, archs):
        archs = [str(a) for a in archs]
        reads.extend(archs)
        return many(self, archs)

    monkeypatch.setattr(NB201RobustnessTruth, "lookup", lookup)
    monkeypatch.setattr(NB201RobustnessTruth, "lookup_many", lookup_many)
    return reads


def test_a_paid_objective_is_read_once_with_each_label_and_never_for_open_archs(
        tiny_run, robustness_reads):
    """The strategy's whole run (the report aside, which reads the truth of the space) reads
    the robustness of exactly the archs it labels, once each, in the order they are labelled,
    while it chooses among 40 evaluated archs; each label counts once for both values."""
    cfg = search_config(tiny_run, "progress=false", *FREE, "name=paid-reads", *SMALL, *PAID,
                        config=GUIDED)
    search = Search(tiny_run, cfg)
    search.out_dir.mkdir(parents=True)
    run = search.runner.run(search.strategy, search.truth, search.labels)  # no report
    labels = read_jsonl(search.out_dir / "labels.jsonl")
    archs = [line["arch"] for line in labels]
    assert robustness_reads == archs and len(set(archs)) == 12
    assert len({r.arch for r in run.records}) == 40 and run.spent.labels == 12
    assert [line["label"] for line in labels] == pytest.approx(VALID.lookup_many(archs))
    assert [line["paid"][ROBUST] for line in labels] == ROBUSTNESS.lookup_many(archs)
    assert run.paid == {ROBUST: {line["arch"]: line["paid"][ROBUST] for line in labels}}


def test_a_paid_search_resumed_pays_only_the_missing_labels_and_ends_the_same(
        tiny_run, robustness_reads):
    first, _, labels, out = guided_search(tiny_run, "name=paid-resume", *SMALL, *PAID)
    lines = (out / "labels.jsonl").read_text().splitlines()
    (out / "labels.jsonl").write_text("\n".join(lines[:8]) + "\n")  # killed after 8 labels
    (out / "summary.json").unlink()
    robustness_reads.clear()
    again, _, relabelled, _ = guided_search(tiny_run, "name=paid-resume", *SMALL, *PAID)
    assert relabelled == labels
    assert robustness_reads[:4] == [line["arch"] for line in labels[8:]]  # then the report's
    assert again["strategy"]["fronts"] == first["strategy"]["fronts"]
    assert again["strategy"]["incumbent"] == first["strategy"]["incumbent"]


def test_a_paid_search_reports_its_front_by_the_labelled_values(tiny_run):
    """The found front is chosen by the labels and the robustness paid with them (replayed from
    labels.jsonl), and measured at the true accuracy and the table's robustness."""
    summary, _, labels, out = guided_search(tiny_run, "name=paid-front", *SMALL, *PAID)
    front = summary["strategy"]["fronts"][ROBUST]
    paid = {line["arch"]: line["paid"][ROBUST] for line in labels}
    assert front["maximise"] and front["found"]
    assert all(p["paid"] == p[ROBUST] == paid[p["arch"]] for p in front["found"])
    assert 0 < front["hypervolume_fraction"] <= 1 and front["space_front_counted"] > 0
    assert "(paid with the label, predicted)" in summary["strategy"]["describe"]
    # The last label is not used to choose anything: paid a better value than any, its arch
    # joins the front at that value, still measured at the table's.
    lines = (out / "labels.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    lines[-1] = json.dumps({**last, "paid": {ROBUST: 99.0}})
    (out / "labels.jsonl").write_text("\n".join(lines) + "\n")
    (out / "summary.json").unlink()
    again = guided_search(tiny_run, "name=paid-front", *SMALL, *PAID)[0]
    point = next(p for p in again["strategy"]["fronts"][ROBUST]["found"]
                 if p["arch"] == last["arch"])
    assert point["paid"] == 99.0 and point[ROBUST] == ROBUSTNESS.lookup(last["arch"])


def test_label_book_pays_objectives_with_the_labels_and_replays_them(tmp_path):
    path = tmp_path / "labels.jsonl"
    archs = [str(arch) for arch in list(SPACE.enumerate())[:3]]
    labels, paid = LabelBook(VALID, path).label_with(
        archs, [TableObjective(ROBUST, True, ROBUSTNESS)])
    assert labels == VALID.lookup_many(archs) and paid == [ROBUSTNESS.lookup_many(archs)]
    assert stored_labels(path) == (dict(zip(archs, labels)), {ROBUST: dict(zip(archs, paid[0]))})
    # A replay answers both values from the file, whatever the sources say now.
    unknowing = _Known()
    unknowing.values = {}
    replay = LabelBook(unknowing, path)
    assert replay.label_with(archs, [TableObjective(ROBUST, True, unknowing)]) == (labels, paid)
    assert replay.count == 3 and replay.paid == {ROBUST: dict(zip(archs, paid[0]))}
    with pytest.raises(SpeedyNASError, match=r"label 0 was paid with \['pgd@Linf_eps-1.0'\], but "
                                             "the strategy now pays for none"):
        LabelBook(VALID, path).label(archs[:1])
