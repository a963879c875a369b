"""experiments/learned_combo.py: how searches are joined by arch, and the fits on real archs."""
from __future__ import annotations

import math
import runpy

import numpy as np
import pytest

import search_spaces
from speedynas_core.atomic_io import append_jsonl
from search_spaces.nb201_table import load_table

from .conftest import REPO

SPACE = search_spaces.create("nb201")


@pytest.fixture(scope="module")
def bench() -> dict:
    return runpy.run_path(str(REPO / "experiments" / "learned_combo.py"))


def _record(arch: str, losses: list[float], zero_cost: dict[str, float],
            flops: int | None) -> dict:
    return {"arch": arch, "params": 1000, "flops": flops,
            "trajectory": {"train_losses": losses, "zero_cost": zero_cost}}


def test_searches_are_joined_by_arch(bench, tmp_path):
    a, b = (str(arch) for arch in SPACE.sample_many(2, np.random.default_rng(0)))
    zero_cost, tuned = tmp_path / "zc", tmp_path / "tuned"
    for directory in (zero_cost, tuned):
        directory.mkdir()
    proxies = {"grad_norm": 0.5, "snip": 1.0, "synflow": 3.0, "jacov": -4.0, "nwot": 2.0}
    append_jsonl(zero_cost / "results.jsonl", _record(a, [], proxies, 7))
    append_jsonl(tuned / "results.jsonl", _record(a, [2.0, 1.5], {"nwot": 9.0}, None))
    append_jsonl(tuned / "results.jsonl", _record(b, [2.2, 1.9], {}, None))
    trajectories, candidates = bench["joined"]([zero_cost, tuned])
    assert [c.arch for c in candidates] == [a, b]
    assert trajectories[0].train_losses == [2.0, 1.5]  # the fine-tuned search's records
    assert trajectories[0].zero_cost == proxies  # the first search's value wins
    assert candidates[0].flops == 7 and candidates[1].flops is None
    assert candidates[0].encoding == tuple(SPACE.encode(SPACE.parse(a)))
    zero_cost_set = bench["FEATURE_SETS"][0]
    assert bench["usable"](zero_cost_set, trajectories, candidates, 2) == [0]  # b lacks them


def test_learned_fits_on_table_features_score_held_out_archs(bench, tmp_path):
    """Table columns as stand-in features of 240 real archs: the fits score only the archs
    they were not fitted on, and more labels rank them better."""
    table = load_table()
    archs = list(SPACE.enumerate())
    rows = np.random.default_rng(1).choice(len(archs), 240, replace=False)
    search = tmp_path / "search"
    search.mkdir()
    for r in rows:
        proxies = {name: float(table.column(column)[r]) for name, column in (
            ("grad_norm", "cifar10_test_12ep_1seed"), ("snip", "cifar100_test"),
            ("synflow", "imagenet16_120_test"), ("jacov", "params_cifar10"),
            ("nwot", "cifar10_valid_val"))}
        append_jsonl(search / "results.jsonl", _record(str(archs[r]), [], proxies, 1))
    trajectories, candidates = bench["joined"]([search])
    truths = {str(archs[r]): float(table.column("cifar10_test")[r]) for r in rows}
    out = bench["run"](trajectories, candidates, truths, [20, 100], 2, 1)
    assert {r["features"] for r in out} == {"zero-cost", "zero-cost + params/flops",
                                            "zero-cost + params/flops + encoding"}
    for row in out:
        assert row["evaluated"] == 240 - row["fit_size"] and math.isfinite(row["spearman"])
    by_size = {k: np.mean([r["spearman"] for r in out if r["fit_size"] == k]) for k in (20, 100)}
    assert by_size[100] > by_size[20] > 0.5
    assert "| zero-cost | 240 |" in bench["table"](out, "cmd")
