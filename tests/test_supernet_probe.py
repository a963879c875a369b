"""benchmarks/supernet_probe.py: the fixed-path mode trains one path, the learning rate holds."""
from __future__ import annotations

import runpy

import numpy as np
import torch

from .conftest import CIFAR10_DIR, REPO

TOY = REPO / "configs" / "toy.yaml"


def test_the_fixed_mode_trains_one_path_at_a_held_learning_rate(tmp_path) -> None:
    script = runpy.run_path(str(REPO / "benchmarks" / "supernet_probe.py"))
    trainer = script["probe_trainer"](TOY, [f"data.root={CIFAR10_DIR}", "optim.lr=0.05"],
                                      "fixed", tmp_path)
    path = trainer.sampler.paths(np.random.default_rng(1))
    assert path == trainer.sampler.paths(np.random.default_rng(2))  # whatever the rng
    on_path = {id(p) for p in trainer.net.assemble_subnet(path[0], lambda m: m).parameters()}
    before = {name: p.detach().clone() for name, p in trainer.net.named_parameters()}
    for x, y in trainer.batches.take(3):
        trainer.train_step(x, y)
    changed = {name for name, p in trainer.net.named_parameters()
               if not torch.equal(p, before[name])}
    unused = [name for name, p in trainer.net.named_parameters() if id(p) not in on_path]
    assert changed and not changed & set(unused)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.05


def test_the_probe_reports_both_modes(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["supernet_probe.py", "--config", str(TOY), "--steps", "4",
                                     "--window", "2", "--set", f"data.root={CIFAR10_DIR}"])
    runpy.run_path(str(REPO / "benchmarks" / "supernet_probe.py"), run_name="__main__")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.025")]
    assert [row.split(" | ")[1] for row in rows] == ["sampled", "fixed"]
    losses = [float(v) for row in rows for v in row.split(" | ")[2].split()]
    assert len(losses) == 4 and all(0 < v < 10 for v in losses)
