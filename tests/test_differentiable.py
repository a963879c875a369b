"""Gradient-based search methods: the relaxed supernets, DARTS-TSE's α-gradient, resume, the
DARTS space, the method section and the old sampler spelling."""
from __future__ import annotations

import json
import re
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import supernet
from speedynas_core.atomic_io import load_checkpoint
from speedynas_core.config import load_config
from speedynas_core.errors import SpeedyNASError
from supernet.methods.trainer import DifferentiableTrainer, heat_map
from supernet.run_dir import load_run_config, resolve_train_config
from supernet.train_config import TrainConfig
from supernet.trainer import SupernetTrainer
from supernet.training import create_trainer

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, run_script, wait_until

TOY = REPO / "configs" / "toy.yaml"
DATA = f"data.root={CIFAR10_DIR}"
SIZES = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}}


def one_hot(net: supernet.Supernet, arch) -> dict[str, torch.Tensor]:
    """Mixing weights that select exactly ``arch`` (DARTS: unused edges on ``none``)."""
    weights = {}
    for kind, ops in net.relaxed_ops().items():
        w = torch.zeros(net.relaxed_edges()[kind], len(ops))
        if net.space.name == "nb201":
            for edge, op in enumerate(arch.ops):
                w[edge, ops.index(op)] = 1
        else:
            from search_spaces.darts import edge_index

            w[:, 0] = 1
            for p, (op, inp) in enumerate(arch.cell(kind == "reduce")):
                edge = edge_index(p // 2, inp)
                w[edge, 0], w[edge, ops.index(op)] = 0, 1
        weights[kind] = w
    return weights


@pytest.mark.parametrize("space", sorted(SIZES))
def test_one_hot_mixing_weights_compute_what_the_single_path_computes(space):
    torch.manual_seed(0)
    net = supernet.create_supernet(space, **SIZES[space])
    x = torch.randn(4, 3, 16, 16)
    rng = np.random.default_rng(3)
    archs = net.space.sample_many(6, rng)
    if space == "nb201":  # cells with dead and empty nodes too
        archs += [net.space.parse(text) for text in (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")]
    with torch.no_grad():
        for arch in archs:
            torch.testing.assert_close(net.forward_relaxed(x, one_hot(net, arch)), net(x, arch),
                                       rtol=0, atol=1e-6)
            assert net.derive(one_hot(net, arch)) == arch  # deriving inverts the encoding


@pytest.mark.parametrize("space", sorted(SIZES))
def test_relaxed_supernet_gives_alpha_a_gradient_on_every_entry(space):
    torch.manual_seed(0)
    net = supernet.create_supernet(space, **SIZES[space])
    alphas = {k: torch.zeros(net.relaxed_edges()[k], len(ops), requires_grad=True)
              for k, ops in net.relaxed_ops().items()}
    loss = F.cross_entropy(net.forward_relaxed(torch.randn(4, 3, 16, 16), {
        k: a.softmax(-1) for k, a in alphas.items()}), torch.arange(4))
    loss.backward()
    for a in alphas.values():
        assert torch.isfinite(a.grad).all() and (a.grad != 0).all()


def toy_trainer(run_dir: Path, *overrides: str, config: Path = TOY) -> SupernetTrainer:
    cfg = resolve_train_config(run_dir, str(config), [DATA, "log.probe_archs=0", *overrides],
                               resume=False)
    return create_trainer(cfg, run_dir)


def test_darts_tse_updates_alpha_with_the_hand_computed_sum_of_k_training_gradients(tmp_path):
    K = 3
    settings = ["method.name=darts_tse", f"method.tse_steps={K}", "method.init_scale=0.1"]
    trainer = toy_trainer(tmp_path / "trainer", *settings)
    replica = toy_trainer(tmp_path / "replica", *settings)  # same seed: same weights, α, batches
    assert isinstance(trainer, DifferentiableTrainer)
    start = {k: a.detach().clone() for k, a in replica.alphas.alphas.items()}
    expected = {k: torch.zeros_like(a) for k, a in start.items()}
    partial = []
    batches = list(replica.batches.take(K))
    for x, y in batches:  # by hand: the α-gradient of each step's training loss, then SGD on w
        alpha = replica.alphas.alphas["cell"]
        loss = F.cross_entropy(replica.net.forward_relaxed(x, {"cell": alpha.softmax(-1)}), y)
        grads = torch.autograd.grad(loss, [alpha, *replica.net.parameters()], allow_unused=True)
        expected["cell"] += grads[0]
        partial.append(expected["cell"].clone())
        for p, g in zip(replica.net.parameters(), grads[1:]):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(replica.net.parameters(), replica.cfg.optim.grad_clip)
        replica.optimizer.step()
        replica.scheduler.step()
    for k, (x, y) in enumerate(trainer.batches.take(K)):
        torch.testing.assert_close(x, batches[k][0], rtol=0, atol=0)
        trainer.train_step(x, y)
        trainer.step += 1
        if k < K - 1:  # summed so far, α untouched
            torch.testing.assert_close(trainer.tse_sum[0], partial[k], rtol=1e-5, atol=1e-8)
            assert torch.equal(trainer.alphas.alphas["cell"].detach(), start["cell"])
    # one Adam step (first step: bias-corrected moments m = g, v = g^2) on g = sum + wd * α
    method = trainer.method
    g = expected["cell"] + method.arch_weight_decay * start["cell"]
    wanted = start["cell"] - method.arch_lr * g / (g.abs() + 1e-8)
    torch.testing.assert_close(trainer.alphas.alphas["cell"].detach(), wanted, rtol=1e-5,
                               atol=1e-7)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in trainer.tse_sum)
    for p, q in zip(trainer.net.parameters(), replica.net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)  # the same weight steps


def test_darts_steps_alpha_on_validation_batches_and_holds_it_in_the_weight_step(tmp_path):
    trainer = toy_trainer(tmp_path / "run", "method.name=darts")
    before = trainer.alphas.alphas["cell"].detach().clone()
    position = trainer.val_batches.state_dict()
    x, y = next(iter(trainer.batches))
    trainer.train_step(x, y)
    assert trainer.val_batches.state_dict()["position"] == position["position"] + 1
    moved = trainer.alphas.alphas["cell"].detach() - before
    assert (moved != 0).all() and moved.abs().max() <= 1.01 * trainer.method.arch_lr
    assert all(p.grad is None for p in trainer.alphas.parameters())  # the α step is done


def test_the_darts_space_relaxation_builds_steps_and_derives_a_searchable_genotype(tmp_path):
    trainer = toy_trainer(tmp_path / "run", "model.C=2", "model.layers=3", "method.name=drnas_tse",
                          "method.tse_steps=2", "optim.epochs=1", "data.train_size=128",
                          "data.val_size=64", "log.progress=false",
                          config=REPO / "configs" / "darts_cpu_darts_tse.yaml")
    shapes = {k: tuple(a.shape) for k, a in trainer.alphas.alphas.items()}
    assert shapes == {"normal": (14, 8), "reduce": (14, 8)}
    before = {k: a.detach().clone() for k, a in trainer.alphas.alphas.items()}
    history = trainer.run()
    assert history[-1]["step"] == 2 and np.isfinite(history[-1]["train_loss"])
    for kind, a in trainer.alphas.alphas.items():
        assert not torch.equal(a.detach(), before[kind])
    arch = trainer.net.space.parse(history[-1]["derived_arch"])
    weights = history[-1]["mixing_weights"]
    assert set(weights) == {"normal", "reduce"} and len(weights["normal"]) == 14
    assert all(abs(sum(row) - 1) < 1e-4 for row in weights["normal"])
    sub = trainer.net.extract(arch)
    assert sub(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_options_that_do_not_apply_to_the_method_are_refused():
    for override, key in [("sampler.per_cell=true", "sampler.per_cell does not apply with "
                                                    "method.name=darts"),
                          ("sampler.name=fairnas", "sampler.name does not apply"),
                          ("method.tse_steps=5", "valid keys in section 'method' (name 'darts')")]:
        with pytest.raises(SpeedyNASError, match=re.escape(key)):
            load_config(TrainConfig, TOY, ["method.name=darts", override])
    assert load_config(TrainConfig, TOY, ["method.name=drnas_tse",
                                          "method.tse_steps=7"]).method.tse_steps == 7
    with pytest.raises(SpeedyNASError, match=re.escape(
            "'tse_steps' is an option of gradient-based method darts_tse or drnas_tse: set it "
            "as method.tse_steps")):
        load_config(TrainConfig, TOY, ["sampler.tse_steps=5"])


def test_a_method_chooses_the_relaxed_trainer_and_none_the_single_path_one(tmp_path):
    single = toy_trainer(tmp_path / "single")
    assert type(single) is SupernetTrainer and single.sampler is not None
    relaxed = toy_trainer(tmp_path / "relaxed", "method.name=drnas", "method.arch_lr=0.01")
    assert isinstance(relaxed, DifferentiableTrainer) and relaxed.sampler is None
    assert relaxed.method.relaxation == "dirichlet" and relaxed.method.arch_lr == 0.01
    assert relaxed.arch_optimizer.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("method", ["darts", "darts_tse", "drnas", "drnas_tse"])
def test_the_old_sampler_spelling_is_refused_naming_the_method_key(method):
    wanted = (f"sampler.name: {method!r} is a gradient-based search method now: use "
              f"method.name={method} (its options under method.)")
    for overrides in ([f"sampler.name={method}"], [f"sampler={{name: {method}, arch_lr: 0.1}}"]):
        with pytest.raises(SpeedyNASError, match=re.escape(wanted)):
            load_config(TrainConfig, TOY, overrides)


@pytest.mark.e2e
def test_train_py_refuses_the_old_sampler_spelling_in_one_line(tmp_path):
    proc = run_script("train.py", "--config", str(TOY), "--run-dir", str(tmp_path / "run"), DATA,
                      "sampler.name=darts_tse", "sampler.tse_steps=5", check=False)
    assert_one_line_error(proc, "sampler.name: 'darts_tse' is a gradient-based search method "
                                "now: use method.name=darts_tse (its options under method.)")
    assert not (tmp_path / "run" / "config.yaml").exists()


def old_spelling(run_dir: Path) -> str:
    """Rewrite ``run_dir``'s saved config as runs trained before the method section saved it
    (the method and its options under ``sampler:``); the text written."""
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["sampler"] = saved.pop("method")
    text = yaml.safe_dump(saved, sort_keys=False)
    (run_dir / "config.yaml").write_text(text)
    return text


def test_a_run_saved_with_the_old_spelling_is_read_as_its_method_and_trains_the_same(tmp_path):
    settings = ["method.name=darts_tse", "method.tse_steps=3", "optim.epochs=1",
                "data.train_size=384", "data.val_size=64"]  # 6 steps: two α updates
    new = toy_trainer(tmp_path / "new", *settings)
    old_dir = tmp_path / "old"
    resolve_train_config(old_dir, str(TOY), [DATA, "log.probe_archs=0", *settings], resume=False)
    old_spelling(old_dir)  # a run dir whose config was saved, no checkpoint yet
    cfg = resolve_train_config(old_dir, None, [], resume=True)
    assert cfg == load_run_config(old_dir) == new.cfg
    assert cfg.method.tse_steps == 3 and cfg.sampler.name == "randnas"
    new.run()
    create_trainer(cfg, old_dir).run()
    ours, reference = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (old_dir,
                                                                             tmp_path / "new"))
    for part in ("model", "alphas"):
        assert all(torch.equal(ours[part][k], reference[part][k]) for k in reference[part])
    with pytest.raises(SpeedyNASError, match="differs in: method.tse_steps"):
        resolve_train_config(old_dir, None, ["method.tse_steps=4"], resume=True)


@pytest.mark.e2e
def test_an_old_spelling_run_dir_resumes_and_is_searched_with_its_file_left_as_it_is(tmp_path):
    run_dir = tmp_path / "old"
    run_script("train.py", "--config", str(TOY), "--run-dir", str(run_dir), DATA,
               "method.name=darts", "optim.epochs=1", "log.probe_archs=0")
    text = old_spelling(run_dir)
    resumed = run_script("train.py", "--run-dir", str(run_dir), "--resume")
    assert "was already complete" in resumed.stdout
    searched = run_script("search.py", "--run-dir", str(run_dir), "--config",
                          str(REPO / "configs" / "search_toy.yaml"), "retrain.enabled=false",
                          "candidates.num=4", "name=old-spelling")
    assert "spearman" in searched.stdout.lower()
    assert (run_dir / "config.yaml").read_text() == text


def train_cmd(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir), *args]


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["darts", "drnas_tse"])
def test_a_run_stopped_mid_epoch_resumes_bit_identically_and_is_searchable(method, tmp_path):
    args = ["--config", str(TOY), DATA, f"method.name={method}", "optim.epochs=2",
            "data.train_size=2048", "log.probe_archs=0"]
    if method.endswith("tse"):
        args.append("method.tse_steps=7")  # α updates do not line up with epochs
    run_dir = tmp_path / "stopped"
    proc = subprocess.Popen(train_cmd(run_dir, *args), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until((run_dir / "history.json").exists, proc)  # epoch 1 done: stop the second
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "checkpoint saved at step" in err, err
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not state["finished"] and state["step"] % 32 != 0  # mid-epoch
    assert subprocess.run(train_cmd(run_dir, "--resume"), cwd=REPO, capture_output=True
                          ).returncode == 0
    whole = tmp_path / "whole"
    assert subprocess.run(train_cmd(whole, *args), cwd=REPO, capture_output=True
                          ).returncode == 0
    ours, reference = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (run_dir, whole))
    for part in ("model", "alphas"):
        assert ours[part].keys() == reference[part].keys()
        assert all(torch.equal(ours[part][k], reference[part][k]) for k in ours[part])
    history = json.loads((run_dir / "history.json").read_text())
    keys = ("epoch", "step", "derived_arch", "derived_true_acc", "mixing_weights")
    assert [{k: h[k] for k in keys} for h in history] == [
        {k: h[k] for k in keys} for h in json.loads((whole / "history.json").read_text())]
    assert 0 < history[-1]["derived_true_acc"] < 100  # the shipped table knows every cell
    searched = run_script("search.py", "--run-dir", str(run_dir), "--config",
                          str(REPO / "configs" / "search_toy.yaml"), "retrain.enabled=false",
                          "candidates.num=4", "name=after-relaxed")
    assert "spearman" in searched.stdout.lower()


def test_the_heat_map_shows_each_edges_strongest_op_in_white():
    image = heat_map(torch.tensor([[0.19, 0.21, 0.2, 0.2, 0.2], [0.5, 0.1, 0.1, 0.1, 0.2]]), 3)
    assert image.shape == (6, 15) and image.max() == 1
    assert image[0, 3] == 1 and image[3, 0] == 1 and image[0, 0] < 1


def test_the_benchmark_reads_each_epochs_skip_weight_and_parameter_free_edges(tmp_path):
    """experiments/differentiable.py's per-epoch row: the cell's mean skip_connect weight is
    softmax(α)'s at the end of the epoch, and the derived arch's weight-free edges are counted."""
    run_dir = tmp_path / "darts-seed1"
    trainer = toy_trainer(run_dir, "method.name=darts", "method.init_scale=1.0",
                          "optim.epochs=1", "data.train_size=128", "data.val_size=64",
                          "log.progress=false")
    trainer.run()
    bench = runpy.run_path(str(REPO / "experiments" / "differentiable.py"))
    [row] = bench["rows_of"]([("darts", 1, run_dir)])
    skip = trainer.net.space.ops.index("skip_connect")
    expected = trainer.alphas.alphas["cell"].detach().softmax(-1)[:, skip].mean().item()
    assert abs(expected - 0.2) > 1e-3  # init_scale=1: far from uniform, so the check bites
    assert row["skip_weight"] == pytest.approx(expected, abs=1e-5)
    ops = trainer.net.space.parse(row["arch"]).ops
    assert row["free_edges"] == sum(op in ("none", "skip_connect", "avg_pool_3x3") for op in ops)
    text = bench["table"]([row], ["darts"], [1])
    accuracy = "n/a" if row["true_acc"] is None else f"{row['true_acc']:.2f}"  # no table: n/a
    assert f"| darts | 1 | {accuracy} | {row['skip_weight']:.4f} |" in text
