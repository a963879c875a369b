"""The notebook API (speedynas.load_run): the same records as search.py, rankings by them,
inherited sub-networks and ground truth."""
from __future__ import annotations

import json
import math

import pytest
import torch

import speedynas
from search_spaces import create_ground_truth
from speedynas_search.metrics import rank_order

from .conftest import REPO, run_script

CONFIG = REPO / "configs" / "search_toy.yaml"
OVERRIDES = ["candidates.num=4", "retrain.enabled=false", "threads=1",
             "ground_truth.source=nb201"]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def searched(toy_supernet):
    """search.py's records of the toy supernet, in evaluation order."""
    run_script("search.py", "--run-dir", str(toy_supernet), "--config", str(CONFIG),
               "name=api", "progress=false", *OVERRIDES)
    lines = (toy_supernet / "search" / "api" / "results.jsonl").read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: r["index"])


@pytest.fixture(scope="module")
def run(toy_supernet):
    return speedynas.load_run(toy_supernet, CONFIG, OVERRIDES)


def test_evaluate_gives_the_records_search_py_writes(run, searched):
    for stored in searched:
        record = run.evaluate(stored["arch"])
        assert record.scores == stored["scores"]
        assert record.trajectory == stored["trajectory"]
        assert (record.params, record.flops) == (stored["params"], stored["flops"])


def test_rank_orders_archs_by_their_scores_best_first(run, searched):
    archs = [r["arch"] for r in searched]
    ranked = run.rank(archs, "tse", 4)
    scores = [r["scores"]["tse"]["4"] for r in searched]
    assert [arch for arch, _ in ranked] == [archs[i] for i in rank_order(scores)]
    assert [score for _, score in ranked] == sorted(scores, reverse=True)


def test_extract_and_truth_are_the_run_spaces(run, searched):
    arch = run.space.parse(searched[0]["arch"])
    net = run.extract(arch)
    with torch.no_grad():
        logits = net(torch.zeros(2, 3, 16, 16))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    table = create_ground_truth("nb201", space=run.space)
    assert run.truth(arch) == table.lookup(arch) and math.isfinite(run.truth(arch))


def test_nothing_is_written_by_opening_a_run(toy_supernet):
    before = sorted(p.relative_to(toy_supernet) for p in toy_supernet.rglob("*"))
    speedynas.load_run(toy_supernet, CONFIG, [*OVERRIDES, "name=untouched"])
    assert sorted(p.relative_to(toy_supernet) for p in toy_supernet.rglob("*")) == before
