"""experiments/supernet_probe.py: the fixed-path mode trains one path, the learning rate holds."""
from __future__ import annotations

import runpy

import numpy as np
import torch

import search_spaces

from .conftest import CIFAR10_DIR, REPO

TOY = REPO / "configs" / "toy.yaml"


def test_the_fixed_mode_trains_one_path_at_a_held_learning_rate(tmp_path) -> None:
    script = runpy.run_path(str(REPO / "experiments" / "supernet_probe.py"))
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


def test_the_probe_reports_both_modes(tmp_path, capsys) -> None:
    script = runpy.run_path(str(REPO / "experiments" / "supernet_probe.py"))
    script["main"](["--config", str(TOY), "--steps", "4", "--window", "2",
                    "--set", f"data.root={CIFAR10_DIR}"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.025")]
    assert [row.split(" | ")[1] for row in rows] == ["sampled", "fixed"]
    losses = [float(v) for row in rows for v in row.split(" | ")[2].split()]
    assert len(losses) == 4 and all(0 < v < 10 for v in losses)


def test_partly_fixed_darts_paths_keep_what_their_mode_fixes() -> None:
    script = runpy.run_path(str(REPO / "experiments" / "supernet_probe.py"))
    space = search_spaces.create("darts")
    fixed = space.sample(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for mode, kept in (("fixed-ops", 0), ("fixed-inputs", 1)):
        sampler = script["PartlyFixedDarts"](space, fixed, mode)
        paths = [sampler.paths(rng)[0] for _ in range(20)]
        for name in ("normal", "reduce"):
            cells = [getattr(p, name) for p in paths]
            assert all([pair[kept] for pair in c] == [pair[kept] for pair in getattr(fixed, name)]
                       for c in cells)
            assert len({tuple(pair[1 - kept] for pair in c) for c in cells}) > 1  # the rest varies
    convs = script["PartlyFixedDarts"](space, fixed, "convs-only")
    ops = {op for _ in range(20) for name in ("normal", "reduce")
           for op, _ in getattr(convs.paths(rng)[0], name)}
    assert ops == set(script["CONVOLUTIONS"]) and len(ops) == 4
