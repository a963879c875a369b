"""Labels measured by training on demand (``labels.source=standalone``): a guided search of the
toy supernet whose labels are archs trained stand-alone from scratch on real CIFAR-10 images at
a tiny setting (one epoch of 256 images, C=4, N=1), cached in the search's retrain/ folder and
never trained twice; and the ranks of a torchrun search agreeing on every label."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

import search_spaces
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.config import load_config
from speedynas_core.distributed import DistEnv
from speedynas_core.errors import SpeedyNASError
from speedynas_data.data_config import DataConfig
from speedynas_search import retrain as retrain_module
from speedynas_search.retrain import (
    StandaloneLabels,
    StandaloneTrainer,
    cache_file,
    train_standalone,
    training_settings,
)
from speedynas_search.search_config import SearchConfig
from speedynas_search.search_run import Search
from supernet.run_dir import load_run_config

from .conftest import REPO, search_config

SPACE = search_spaces.create("nb201")
GUIDED = ("progress=false", "strategy.name=guided", "estimators.names=[params]",
          "strategy.signals=[graph, size]", "strategy.labels=6", "strategy.initial=3",
          "strategy.pool=10", "strategy.batch=3", "strategy.mutations=6",
          "labels.source=standalone", "retrain.epochs=1", "retrain.train_size=256",
          "retrain.test_size=256", "retrain.C=4", "retrain.N=1", "count_flops=false",
          "threads=1")


class Counting:
    """``train_standalone`` wrapped to count the archs it trains."""

    def __init__(self) -> None:
        self.archs: list[str] = []

    def __call__(self, arch, *args, **kwargs) -> float:
        self.archs.append(str(arch))
        return train_standalone(arch, *args, **kwargs)


def guided(run_dir, *overrides):
    """A guided search with trained labels: its config, summary, labels and folder."""
    cfg = search_config(run_dir, *GUIDED, *overrides)
    summary = Search(run_dir, cfg).run()
    out = run_dir / "search" / cfg.name
    return cfg, summary, read_jsonl(out / "labels.jsonl"), out


def test_labels_are_measured_once_per_arch_and_shared_with_retraining(tiny_run, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(retrain_module, "train_standalone", counting)
    # Top-k retraining of every evaluated arch (16, top_k above that) after the labels.
    cfg, summary, labels, out = guided(tiny_run, "name=trained", "retrain.enabled=true",
                                       "retrain.top_k=20")
    archs = [line["arch"] for line in labels]
    assert len(labels) == 6 and len(set(archs)) == 6
    # Every label a strategy paid for is counted, in the strategy's and the search's count.
    assert summary["strategy"]["spent"]["labels"] == 6
    assert summary["labels"]["strategy"] == summary["labels"]["total"] == 6
    assert summary["settings"]["labels"].startswith("trained stand-alone on demand (1 epochs")
    assert "labels used: 6 = 6 paid for by the strategy\n" in (out / "summary.md").read_text()
    # The time spent training labels is the labels', not the strategy's overhead.
    strategy = summary["strategy"]
    assert strategy["run_label_seconds"] > 0
    assert strategy["overhead_seconds"] == pytest.approx(max(0.0, strategy["run_wall_seconds"]
        - strategy["run_evaluation_seconds"] - strategy["run_label_seconds"]))
    # Each arch was trained once: the labelled ones as they were asked for, then the top-k
    # that were not labelled; one cache file per arch, holding the label.
    retrained = set(summary["retrain"]["archs"])
    assert set(archs) < retrained
    assert counting.archs[:6] == archs
    assert sorted(counting.archs) == sorted(set(archs) | retrained)
    files = {cache_file(out / "retrain", SPACE, a): a for a in counting.archs}
    assert set((out / "retrain").glob("*.json")) == set(files)
    settings = training_settings(cfg.retrain, "cifar10")
    for line in labels:
        record = json.loads(cache_file(out / "retrain", SPACE, line["arch"]).read_text())
        assert record["arch"] == line["arch"] and record["test_acc"] == line["label"]
        assert record["retrain"] == settings["retrain"] and record["dataset"] == "cifar10"
        assert 0 <= line["label"] <= 100
    for line in labels:
        assert summary["retrain"]["archs"][line["arch"]]["test_acc"] == line["label"]
    # A label is the arch's measured test accuracy: training it again gives the same number.
    trainer = StandaloneTrainer(cfg.retrain, load_run_config(tiny_run).data, SPACE,
                                out / "retrain", "cpu")
    assert trainer.train(archs[0])[0] == labels[0]["label"]
    # The labels differ between archs (they are measured, not a constant).
    assert len({line["label"] for line in labels}) > 1


def test_a_rerun_or_a_lost_label_file_trains_nothing_again(tiny_run, monkeypatch):
    _, first, labels, out = guided(tiny_run, "name=again")
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "retrain").glob("*.json")}
    assert len(mtimes) == 6

    def refuse(*args, **kwargs):
        raise AssertionError("trained an arch whose label is cached")

    monkeypatch.setattr(retrain_module, "train_standalone", refuse)
    # Resumed: the labels are replayed from labels.jsonl.
    _, again, relabelled, _ = guided(tiny_run, "name=again")
    assert relabelled == labels
    assert again["strategy"]["incumbent"] == first["strategy"]["incumbent"]
    # labels.jsonl lost: every label is asked for again, and read from the cache.
    (out / "labels.jsonl").unlink()
    _, third, asked_again, _ = guided(tiny_run, "name=again")
    assert asked_again == labels and third["strategy"]["spent"]["labels"] == 6
    assert {p: p.stat().st_mtime_ns for p in (out / "retrain").glob("*.json")} == mtimes
    # Other training settings would make other labels: a resume with them is refused.
    with pytest.raises(SpeedyNASError, match=r"retrain.epochs changed since the labels in .*"
                                             r"labels.jsonl were trained"):
        guided(tiny_run, "name=again", "retrain.epochs=2")


@pytest.mark.parametrize("overrides, fragment", [
    (("ground_truth.source=standalone",),
     "ground_truth.source: standalone trains the archs it is asked about"),
    (("labels.source=standalone", "labels.column=cifar10_valid_val"),
     "unknown key 'labels.column'"),
    (("labels.source=standalon",),
     "labels.source: unknown label source 'standalon'; registered: nb201, "),
])
def test_contradictory_label_settings_are_refused_in_one_line(overrides, fragment):
    with pytest.raises(SpeedyNASError, match=fragment) as error:
        load_config(SearchConfig, REPO / "configs" / "search_toy.yaml", list(overrides),
                    context={"space": "nb201"})
    assert "\n" not in str(error.value)


def test_standalone_labels_need_a_strategy_that_pays_for_them(tiny_run):
    cfg = search_config(tiny_run, "name=unpaid", "labels.source=standalone")
    with pytest.raises(SpeedyNASError, match="labels.source is set, but strategy 'sample'"):
        Search(tiny_run, cfg)


def _rank(rank: int, folder: str) -> None:
    """One of two gloo ranks asking for the same label twice; trains give rank-dependent
    numbers, as nondeterministic GPU kernels might."""
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank,
                            world_size=2)
    rcfg = load_config(SearchConfig, REPO / "configs" / "search_toy.yaml",
                       context={"space": "nb201"}).retrain
    trainer = StandaloneTrainer(rcfg, DataConfig(), SPACE, os.path.join(folder, "retrain"), "cpu")
    trained = []

    def train(arch: str) -> tuple[float, float]:
        trained.append(arch)
        return 50.0 + rank, 0.0

    trainer.train = train
    labels = StandaloneLabels(trainer, DistEnv(rank, 2))
    arch = str(SPACE.sample(np.random.default_rng(0)))
    values = [labels.lookup(arch), labels.lookup(arch)]
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
        json.dump({"values": values, "trained": trained, "arch": arch}, handle)
    dist.destroy_process_group()


def test_every_rank_gets_rank_zeros_label_and_only_rank_zero_writes(tmp_path):
    mp.spawn(_rank, args=(str(tmp_path),), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    arch = ranks[0]["arch"]
    for result in ranks:
        assert result["values"] == [50.0, 50.0]  # rank 0's number, the second from the cache
        assert result["trained"] == [arch]  # each rank trained once, in step with rank 0
    files = list((tmp_path / "retrain").glob("*.json"))
    assert files == [cache_file(tmp_path / "retrain", SPACE, arch)]
    assert json.loads(files[0].read_text())["test_acc"] == 50.0
