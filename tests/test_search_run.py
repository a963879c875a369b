"""A search and top-k retraining run in-process on a tiny supernet (seconds): the fast-lane checks
of speedynas_search.search_run and speedynas_search.retrain. search.py itself, end to end, is
tested in test_search.py (marked e2e)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import search_spaces
from speedynas_core.atomic_io import dumps_strict, load_checkpoint, read_jsonl, save_checkpoint
from speedynas_core.errors import SpeedyNASError
from speedynas_search import retrain as retrain_module
from speedynas_search.results_store import Record
from speedynas_search.retrain import RetrainTruth, cache_file, retrain_top_k
from speedynas_search.search_run import Search
from supernet import tensor_snapshot
from supernet.run_dir import load_run_config, load_supernet

from .conftest import search_config


def test_search_scores_every_candidate_resumes_and_leaves_the_supernet_untouched(tiny_run):
    cfg = search_config(tiny_run, "name=unit", "candidates.num=3")
    search = Search(tiny_run, cfg)
    before = tensor_snapshot(search.net)
    summary = search.run()
    after = search.net.state_dict()
    assert all(after[k].equal(v) for k, v in before.items())
    results = read_jsonl(tiny_run / "search" / "unit" / "results.jsonl")
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["arch"] for r in results] == [str(a) for a in search.candidates]
    for record in results:
        assert set(record["scores"]) == set(cfg.estimators.names)
        assert all(set(s) == {"2", "4"} for s in record["scores"].values())
        losses = record["trajectory"]["train_losses"]
        assert len(losses) == 4
        assert record["scores"]["tse"]["2"] == pytest.approx(-sum(losses[:2]))
    assert summary["n_candidates"] == 3 and list(summary["metrics"]) == list(cfg.estimators.names)
    # A record reads and writes its line unchanged (keys, order, values).
    lines = (tiny_run / "search" / "unit" / "results.jsonl").read_text().splitlines()
    assert [dumps_strict(Record.from_json(json.loads(line)).to_json()) for line in lines] == lines
    # Run again: every candidate is done, nothing is fine-tuned, the results are unchanged.
    again = Search(tiny_run, cfg)
    again.runner.evaluate = None
    again.run()
    assert read_jsonl(tiny_run / "search" / "unit" / "results.jsonl") == results


def test_retrain_top_k_trains_each_arch_once_and_caches_it(tiny_run, tmp_path, monkeypatch):
    cfg = search_config(tiny_run, "estimators.names=[tse, params]", "finetune.budgets=[4]",
                        "retrain.top_k=1", "retrain.train_size=64", "retrain.test_size=64",
                        "retrain.batch_size=32")
    train_cfg = load_run_config(tiny_run)
    space = search_spaces.create("nb201")
    archs = [str(a) for a in space.sample_many(3, __import__("numpy").random.default_rng(0))]
    # tse ranks archs[0] first, params archs[2]; archs[1] is nobody's top-1.
    results = [Record(index=i, arch=a, steps=4, params=i, flops=None, seconds=0.0,
                      scores={"tse": {"4": -i}, "params": {"4": i}}, trajectory={})
               for i, a in enumerate(archs)]
    truths = {archs[0]: 90.0, archs[1]: 80.0}
    cache = tmp_path / "retrain"
    summary = retrain_top_k(results, cfg, train_cfg, truths, cache, "cpu")
    assert list(summary["archs"]) == [archs[0], archs[2]]
    for arch, row in summary["archs"].items():
        assert 0 <= row["test_acc"] <= 100 and row["table"] == truths.get(arch)
        assert RetrainTruth(cache, space).lookup(arch) == row["test_acc"]
        assert cache_file(cache, space, arch).exists()
    assert summary["estimators"]["tse"] == {"retrained_mean": summary["archs"][archs[0]]["test_acc"],
                                            "table_mean": 90.0}
    assert summary["estimators"]["params"]["table_mean"] is None  # archs[2] is not in the table
    assert RetrainTruth(cache, space).lookup(archs[1]) is None

    # Same settings: everything comes from the cache; other settings: retrained.
    def refuse(*args, **kwargs):
        raise AssertionError("retrained an arch that was cached")

    monkeypatch.setattr(retrain_module, "train_standalone", refuse)
    assert retrain_top_k(results, cfg, train_cfg, truths, cache, "cpu") == summary
    other = search_config(tiny_run, "estimators.names=[tse, params]", "finetune.budgets=[4]",
                          "retrain.top_k=1", "retrain.train_size=32", "retrain.test_size=64",
                          "retrain.batch_size=32")
    with pytest.raises(AssertionError, match="retrained an arch that was cached"):
        retrain_top_k(results, other, train_cfg, truths, cache, "cpu")


@pytest.mark.parametrize("damage, fragment", [
    (lambda lines: lines + [lines[0]], "record 4: evaluation 0 appears twice"),
    (lambda lines: lines + [lines[0].replace('"index": 0', '"index": -7')],
     r"record 4: index -7 is not an evaluation index"),
    (lambda lines: lines[:1] + ['[1, 2, 3]'], "record 2: not a results record"),
    (lambda lines: [lines[0].replace('"steps": 2', '"steps": 1.5')] + lines[1:],
     "record 1: steps 1.5 is not a number of fine-tune steps"),
    (lambda lines: lines[:2] + [lines[2].replace('"params":', '"parameters":')],
     "record 3: evaluation 2 lacks params"),
    (lambda lines: [lines[1].replace('"index": 1', '"index": 0'),
                    lines[0].replace('"index": 0', '"index": 1')] + lines[2:],
     "evaluation 0 is .* at 2 steps, but the strategy now asks for"),
])
def test_records_that_do_not_belong_to_the_search_are_refused(tiny_run, damage, fragment):
    cfg = search_config(tiny_run, "name=records", "candidates.num=3", "finetune.budgets=[2]",
                        "estimators.names=[tse]")
    Search(tiny_run, cfg).run()
    results = tiny_run / "search" / "records" / "results.jsonl"
    good = results.read_text()
    results.write_text("\n".join(damage(good.splitlines())) + "\n")
    try:
        with pytest.raises(SpeedyNASError, match=fragment):
            Search(tiny_run, cfg).run()
    finally:
        results.write_text(good)


def test_a_checkpoint_with_other_tensors_is_refused_naming_it(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("search"))
    path = run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(3, 3)  # another shape, with a valid digest
    save_checkpoint(state, path)
    with pytest.raises(SpeedyNASError, match=rf"checkpoint {path} does not fit this run's "
                                             rf"networks .*{name}"):
        load_supernet(run_dir)


def test_a_kept_epoch_checkpoint_is_searched_when_asked(tmp_path):
    from supernet.run_dir import kept_epochs, resolve_train_config
    from supernet.trainer import SupernetTrainer

    from .conftest import CIFAR10_DIR, REPO

    run_dir = tmp_path / "run"
    cfg = resolve_train_config(run_dir, str(REPO / "configs" / "toy.yaml"),
                               [f"data.root={CIFAR10_DIR}", "optim.epochs=2", "log.keep_every=1",
                                "log.probe_archs=0"], resume=False)
    SupernetTrainer(cfg, run_dir).run()
    assert kept_epochs(run_dir) == [1, 2]
    first, _, state = load_supernet(run_dir, epoch=1)
    last, _, _ = load_supernet(run_dir)
    assert state["step"] == 8 and not state.get("finished")
    assert any(not a.equal(b) for a, b in zip(first.state_dict().values(),
                                              last.state_dict().values()))
    search = Search(run_dir, search_config(run_dir, "name=e1", "candidates.num=2",
                                           "supernet_epoch=1"))
    assert all(a.equal(b) for a, b in zip(search.net.state_dict().values(),
                                          first.state_dict().values()))
    assert search.run()["settings"]["supernet_epochs"] == 1
    with pytest.raises(SpeedyNASError, match=r"kept no checkpoint after epoch 3; kept epochs: "
                                             r"1, 2"):
        load_supernet(run_dir, epoch=3)


def test_a_resume_that_fills_a_killed_batchs_gap_keeps_evaluation_order(tiny_run):
    """A sharded search killed mid-batch leaves rank 1's evaluation 3 in its own file and
    rank 0's evaluation 2 missing; the one-process resume inserts 2 in place."""
    from speedynas_core.atomic_io import append_jsonl, atomic_write_text

    from .conftest import TIMING

    Search(tiny_run, search_config(tiny_run, "name=gapless", "candidates.num=6")).run()
    whole = read_jsonl(tiny_run / "search" / "gapless" / "results.jsonl")
    out = tiny_run / "search" / "gap"
    out.mkdir(parents=True)
    atomic_write_text(out / "results.jsonl", "".join(
        f"{(tiny_run / 'search' / 'gapless' / 'results.jsonl').read_text().splitlines()[i]}\n"
        for i in (0, 1)))
    append_jsonl(out / "results.rank1.jsonl", whole[3])
    Search(tiny_run, search_config(tiny_run, "name=gap", "candidates.num=6")).run()
    resumed = read_jsonl(out / "results.jsonl")
    assert [r["index"] for r in resumed] == list(range(6))
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in TIMING} for r in whole]
