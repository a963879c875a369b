"""train.py end to end on real CIFAR-10 images: outputs, determinism, kill/resume, bad input."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from speedynas_core.atomic_io import load_checkpoint
from speedynas_core.config import load_config
from speedynas_core.errors import SpeedyNASError
from supernet.train_config import TrainConfig
from supernet.train_run import defaults_on_cpu_note
from supernet.trainer import StopRequested, SupernetTrainer, accumulate_paths

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, wait_until

TOY = REPO / "configs" / "toy.yaml"
DATA = f"data.root={CIFAR10_DIR}"


def train(run_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run train.py in a subprocess (as a user would)."""
    cmd = [sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """The toy config trained for 3 epochs without interruption."""
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    train(run_dir, "--config", str(TOY), DATA, "optim.epochs=3")
    return run_dir


@pytest.mark.e2e
def test_toy_run_writes_every_output(toy_run):
    cfg = load_config(TrainConfig, toy_run / "config.yaml")
    assert cfg.optim.epochs == 3 and cfg.model.C == 4 and cfg.data.root == str(CIFAR10_DIR)
    state = load_checkpoint(toy_run / "checkpoints" / "last.pt")
    assert state["finished"] and state["step"] == 3 * (512 // 64)
    assert state["meta"]["space"] == "nb201" and state["meta"]["size"]["C"] == 4
    history = __import__("json").loads((toy_run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    split = __import__("json").loads((toy_run / "split.json").read_text())
    assert len(split["train"]) == 512 and len(split["val"]) == 256
    assert not set(split["train"]) & set(split["val"])
    events = list((toy_run / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


@pytest.mark.e2e
def test_same_config_gives_bit_identical_weights(toy_run, tmp_path):
    train(tmp_path / "again", "--config", str(TOY), DATA, "optim.epochs=3")
    assert_bit_identical(weights(toy_run), weights(tmp_path / "again"))


@pytest.mark.e2e
def test_sigkill_then_resume_is_bit_identical(toy_run, tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir), "--config", str(TOY),
           DATA, "optim.epochs=3", "data.train_size=2048"]  # longer epochs: time to kill
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until((run_dir / "history.json").exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not state["finished"] and state["step"] < 3 * 32
    train(run_dir, "--resume")
    uninterrupted = tmp_path / "whole"
    train(uninterrupted, "--config", str(TOY), DATA, "optim.epochs=3", "data.train_size=2048")
    assert_bit_identical(weights(run_dir), weights(uninterrupted))


@pytest.mark.e2e
def test_sigint_saves_mid_epoch_and_resume_is_bit_identical(tmp_path):
    run_dir = tmp_path / "stopped"
    args = ["--config", str(TOY), DATA, "optim.epochs=2", "data.train_size=4096",
            "optim.ema_decay=0.9", "optim.warmup_epochs=1.5"]  # stopped during the warm-up
    cmd = [sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until((run_dir / "tb").exists, proc)
    time.sleep(0.5)  # a few steps into the epoch (any point before its end will do)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "checkpoint saved at step" in err and "Traceback" not in err
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not state["finished"] and state["step"] % 64 != 0  # mid-epoch
    train(run_dir, "--resume")
    train(tmp_path / "whole", *args)
    assert_bit_identical(weights(run_dir), weights(tmp_path / "whole"))
    averages = [load_checkpoint(d / "checkpoints" / "last.pt")["model_ema"]
                for d in (run_dir, tmp_path / "whole")]
    assert_bit_identical(*averages)  # the weight average resumes bit-identically too


@pytest.mark.e2e
def test_a_finished_run_resumed_says_nothing_was_trained_and_changes_nothing(toy_run):
    files = {p: p.read_bytes() for p in toy_run.rglob("*") if p.is_file() and p.name != ".lock"}
    proc = train(toy_run, "--resume")
    assert proc.stdout.startswith(f"{toy_run} was already complete (3 epochs): nothing was "
                                  "trained; its last epoch: train loss "), proc.stdout
    assert "finished" not in proc.stdout
    after = {p: p.read_bytes() for p in toy_run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == files  # no checkpoint, history or TensorBoard file written


@pytest.mark.e2e
def test_resume_of_an_empty_directory_is_refused_and_leaves_it_empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(train(empty, "--resume", check=False),
                          f"cannot resume: {empty} holds no run")
    assert list(empty.iterdir()) == []  # neither a lock nor a run marker left behind


def test_the_cpu_note_names_the_reference_recipe_its_size_and_the_cpu_config():
    note = defaults_on_cpu_note(
        load_config(TrainConfig), 39_100)
    assert "\n" not in note and note.startswith("note: without --config")
    assert "(nb201 supernet C=16, N=5, 100 epochs = 39,100 steps): hours on a CPU" in note
    assert note.endswith("--config configs/nb201_cpu_randnas.yaml in a new --run-dir")
    cpu = load_config(TrainConfig, REPO / "configs" / "nb201_cpu_randnas.yaml")
    assert cpu.model.C < 16 and cpu.optim.epochs < 100  # what the note points to is smaller


TINY = [DATA, "data.resolution=16", "data.train_size=512", "data.val_size=256", "model.C=4",
        "model.N=1", "optim.epochs=1", "log.probe_archs=0", "log.progress=false"]


@pytest.mark.e2e
def test_a_cpu_run_without_config_says_what_it_trains_before_training_it(tmp_path):
    run_dir = tmp_path / "defaults"
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir),
                           "device=cpu", *TINY], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    notes = [i for i, line in enumerate(lines) if line.startswith("note: without --config")]
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1 "))
    assert len(notes) == 1 and notes[0] < first_epoch, proc.stdout
    assert "(nb201 supernet C=4, N=1, 1 epochs = 8 steps)" in lines[notes[0]]
    assert "configs/nb201_cpu_randnas.yaml" in lines[notes[0]]
    saved = load_config(TrainConfig, run_dir / "config.yaml")
    assert saved == load_config(TrainConfig, None, ["device=cpu", *TINY])  # the defaults, as said
    config = tmp_path / "tiny.yaml"
    config.write_text("device: cpu\n")
    given = train(tmp_path / "given", "--config", str(config), *TINY)
    assert "note:" not in given.stdout + given.stderr


@pytest.mark.e2e
def test_corrupted_checkpoint_is_refused_and_kept(toy_run, tmp_path):
    run_dir = tmp_path / "corrupt"
    train(run_dir, "--config", str(TOY), DATA, "optim.epochs=1")
    ckpt = run_dir / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    damaged = ckpt.read_bytes()
    assert_one_line_error(train(run_dir, "--resume", check=False), str(ckpt))
    assert ckpt.read_bytes() == damaged


@pytest.mark.e2e
def test_checkpoint_of_another_size_is_refused(toy_run, tmp_path):
    run_dir = tmp_path / "other"
    train(run_dir, "--config", str(TOY), DATA, "optim.epochs=1", "model.C=6")
    (run_dir / "checkpoints" / "last.pt").write_bytes(
        (toy_run / "checkpoints" / "last.pt").read_bytes())
    assert_one_line_error(train(run_dir, "--resume", check=False), "meta.size.C", "6", "4")


@pytest.mark.e2e
def test_run_dir_with_a_different_config_is_refused(toy_run):
    before = (toy_run / "config.yaml").read_text()
    assert_one_line_error(train(toy_run, "--resume", "optim.lr=0.1", check=False), "optim.lr")
    assert_one_line_error(train(toy_run, "--config", str(TOY), DATA, check=False), "--resume")
    assert (toy_run / "config.yaml").read_text() == before


@pytest.mark.e2e
@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=0.1", "unknown key 'optim.lrr'"),
    ("optim.lr=-1", "optim.lr"),
    ("model.space=nb101", "unknown supernet 'nb101'; registered: darts, nb201"),
    ("sampler.stratify=params", "'stratify' is an option of sampler multipaths"),
    ("method.name=dart", "unknown gradient-based method 'dart'; registered: darts, darts_tse"),
    ("model.layers=3", "valid keys in section 'model' (space 'nb201'): space, channels_last, C, N"),
    ("data.train_size=30000", "data.train_size=30000 exceeds"),
    ("data.root=/nonexistent/cifar", "/nonexistent/cifar"),
    ("optim.warmup_epochs=3", "optim.warmup_epochs=3.0 must be below optim.epochs=2"),
    ("optim.momentum=0", "optim: nesterov=true needs a momentum above 0"),
])
def test_bad_config_is_refused_before_any_work(tmp_path, override, fragment):
    run_dir = tmp_path / "bad"
    proc = train(run_dir, "--config", str(TOY), DATA, override, "data.download=false", check=False)
    assert_one_line_error(proc, fragment)
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.e2e
def test_a_refused_first_run_does_not_block_its_corrected_retry(tmp_path):
    run_dir, empty = tmp_path / "run", tmp_path / "empty_data"
    (empty / "train").mkdir(parents=True)
    (empty / "test").mkdir()
    proc = train(run_dir, "--config", str(TOY), "data.dataset=imagefolder", f"data.root={empty}",
                 check=False)
    assert_one_line_error(proc, str(empty))
    stale = run_dir / "checkpoints" / ".last.pt.0123456789ab.tmp"  # as a killed write leaves it
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    train(run_dir, "--config", str(TOY), DATA, "optim.epochs=1")
    assert not stale.exists()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["finished"]


@pytest.mark.e2e
def test_a_config_from_a_pipe_is_read_once_and_saved_as_given(tmp_path):
    piped, plain = tmp_path / "piped", tmp_path / "plain"
    line = (f"{sys.executable} {REPO / 'train.py'} --config <(cat {TOY}) --run-dir {piped} "
            f"{DATA} optim.epochs=1")
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    train(plain, "--config", str(TOY), DATA, "optim.epochs=1")
    assert (piped / "config.yaml").read_text() == (plain / "config.yaml").read_text()
    assert_bit_identical(weights(piped), weights(plain))
    stdin = subprocess.run([sys.executable, str(REPO / "train.py"), "--config", "/dev/stdin",
                            "--run-dir", str(tmp_path / "stdin"), DATA, "optim.epochs=1"],
                           input=TOY.read_text(), capture_output=True, text=True, cwd=REPO,
                           timeout=600)
    assert stdin.returncode == 0, stdin.stderr
    assert (tmp_path / "stdin" / "config.yaml").read_text() == (plain / "config.yaml").read_text()


@pytest.mark.e2e
def test_an_empty_config_is_refused_not_read_as_the_reference_recipe(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# to be written\n")
    proc = train(tmp_path / "run", "--config", str(empty), check=False)
    assert_one_line_error(proc, f"config file {empty} holds no keys")
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = load_config(TrainConfig, TOY, [DATA, "optim.epochs=3"])
    trainer = SupernetTrainer(cfg, tmp_path)
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss, acc = accumulate_paths(*args, **kwargs)
        return (float("nan") if len(calls) == 12 else loss), acc

    monkeypatch.setattr("supernet.trainer.accumulate_paths", poisoned)
    with pytest.raises(SpeedyNASError, match="training loss became nan at step 11 .*last good checkpoint"):
        trainer.run()
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 8 and not state["finished"]
    assert all(torch.isfinite(v.float()).all() for v in state["model"].values())
    early = SupernetTrainer(cfg, tmp_path / "early")
    calls.clear()
    monkeypatch.setattr("supernet.trainer.accumulate_paths",
                        lambda *a, **k: (float("nan"), 0.0))
    with pytest.raises(SpeedyNASError, match="at step 0 .*stopped, before any checkpoint was "
                                             "written"):
        early.run()



def test_a_stop_on_an_epochs_last_step_finishes_the_epoch_first(tmp_path, monkeypatch):
    """SIGINT during the step before an epoch's last: the epoch's history entry and epoch
    checkpoint are written before the run stops, and the resumed run equals an unstopped one."""
    cfg = load_config(TrainConfig, TOY, [DATA, "optim.epochs=2", "log.keep_every=1"])
    whole = SupernetTrainer(cfg, tmp_path / "whole")
    whole.run()
    stopped = SupernetTrainer(cfg, tmp_path / "stopped")
    last = stopped.steps_per_epoch - 1
    step = stopped.train_step
    monkeypatch.setattr(stopped, "train_step",
                        lambda x, y, stop: step(x, y, stop or stopped.step == last))
    with pytest.raises(StopRequested, match=f"checkpoint saved at step {last + 1}"):
        stopped.run()
    state = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt")
    assert state["step"] == last + 1 and not state["finished"]
    assert [h["epoch"] for h in state["history"]] == [1]
    assert (tmp_path / "stopped" / "checkpoints" / "epoch_1.pt").exists()
    SupernetTrainer(cfg, tmp_path / "stopped").run()
    assert_bit_identical(weights(tmp_path / "stopped"), weights(tmp_path / "whole"))
    keys = ("epoch", "step", "train_loss", "train_acc", "lr")
    assert [{k: h[k] for k in keys} for h in whole.history] == [
        {k: h[k] for k in keys} for h in load_checkpoint(
            tmp_path / "stopped" / "checkpoints" / "last.pt")["history"]]

def test_accumulated_gradients_equal_the_mean_of_per_path_gradients():
    import supernet

    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    paths = net.space.sample_many(4, np.random.default_rng(0))
    accumulate_paths(net, x, y, paths)
    accumulated = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    mean = {}
    for path in paths:
        net.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, path), y).backward()
        for n, p in net.named_parameters():
            if p.grad is not None:
                mean[n] = mean.get(n, 0) + p.grad / len(paths)
    assert accumulated.keys() == mean.keys()
    for n in mean:
        torch.testing.assert_close(accumulated[n], mean[n], rtol=1e-5, atol=1e-7)


def test_bf16_paths_give_fp32_gradients_within_bfloat16_rounding():
    import supernet

    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    paths = net.space.sample_many(3, np.random.default_rng(1))
    grads = {}
    for precision in ("fp32", "bf16"):
        net.zero_grad(set_to_none=True)
        loss, _ = accumulate_paths(net, x, y, paths, precision=precision)
        grads[precision] = torch.cat([p.grad.flatten() for p in net.parameters()
                                      if p.grad is not None])
        assert all(p.grad.dtype == torch.float32 for p in net.parameters() if p.grad is not None)
    assert not grads["bf16"].equal(grads["fp32"])
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"], grads["fp32"], dim=0)
    assert cosine > 0.99


def test_warmup_rises_linearly_then_follows_the_cosine(tmp_path):
    cfg = load_config(TrainConfig, TOY, [DATA, "optim.epochs=2", "optim.warmup_epochs=0.5",
                                         "optim.lr=0.1", "optim.lr_min=0.001",
                                         "log.probe_archs=0"])
    trainer = SupernetTrainer(cfg, tmp_path / "warm")
    total, warm = trainer.total_steps, trainer.steps_per_epoch // 2
    assert (total, warm) == (16, 4)  # 512 toy images, batch 64
    rates = []
    for _ in range(total):
        rates.append(trainer.scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.scheduler.step()
    ramp = [0.1 * (1 / warm + (1 - 1 / warm) * t / warm) for t in range(warm)]
    cosine = [0.001 + 0.099 * (1 + np.cos(np.pi * t / (total - warm))) / 2
              for t in range(total - warm)]
    np.testing.assert_allclose(rates, ramp + cosine, rtol=1e-9)
    assert rates[0] == pytest.approx(0.025) and max(rates) == pytest.approx(0.1)


def test_legacy_zero_grad_keeps_moving_unsampled_ops(tmp_path):
    moved = {}
    for legacy in (False, True):
        cfg = load_config(TrainConfig, TOY, [DATA, "optim.epochs=1", f"optim.legacy_zero_grad={legacy}",
                                             "log.probe_archs=0"])
        trainer = SupernetTrainer(cfg, tmp_path / str(legacy))
        batches = iter(trainer.batches)
        conv = trainer.net.cells[0].edges[0][3][1].weight  # nor_conv_3x3 on edge 1<-0
        trainer.sampler.paths = lambda rng: [trainer.net.space.parse(
            "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")]
        trainer.train_step(*next(batches))
        before = conv.detach().clone()
        trainer.sampler.paths = lambda rng: [trainer.net.space.parse(
            "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")]
        trainer.train_step(*next(batches))
        moved[legacy] = not torch.equal(before, conv.detach())
    assert moved == {False: False, True: True}


def test_weight_average_follows_every_step_is_checkpointed_and_searchable(tmp_path):
    from supernet.run_dir import load_supernet, resolve_train_config

    decay = 0.8
    run_dir = tmp_path / "ema"
    cfg = resolve_train_config(run_dir, str(REPO / "configs" / "toy.yaml"),
                               [f"data.root={CIFAR10_DIR}", "optim.epochs=1", "log.probe_archs=0",
                                f"optim.ema_decay={decay}"], resume=False)
    trainer = SupernetTrainer(cfg, run_dir)
    expected = {n: p.detach().clone() for n, p in trainer.net.named_parameters()}
    for x, y in trainer.batches:
        trainer.train_step(x, y)
        trainer.step += 1
        for n, p in trainer.net.named_parameters():
            expected[n].lerp_(p.detach(), 1 - decay)
    averaged = dict(trainer.ema.module.named_parameters())
    for n, p in trainer.net.named_parameters():
        torch.testing.assert_close(averaged[n], expected[n], rtol=1e-5, atol=1e-7)
    moved = [n for n, p in trainer.net.named_parameters() if not p.equal(averaged[n])]
    assert moved  # the average lags the trained weights
    trainer.save(epoch_end=True)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    for name, buffer in trainer.net.named_buffers():  # BN statistics: the trained ones
        assert state["model_ema"][name].equal(buffer)
    net, _, _ = load_supernet(run_dir, weights="ema", require_finished=False)
    for n, p in net.named_parameters():
        assert p.equal(averaged[n])
    plain = tmp_path / "plain"
    cfg = resolve_train_config(plain, str(REPO / "configs" / "toy.yaml"),
                               [f"data.root={CIFAR10_DIR}", "optim.epochs=1",
                                "log.probe_archs=0"], resume=False)
    SupernetTrainer(cfg, plain).run()
    with pytest.raises(SpeedyNASError, match="holds no weight average: train with "
                                             "optim.ema_decay"):
        load_supernet(plain, weights="ema")
