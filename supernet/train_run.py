"""Training a supernet as ``train.py`` asks: lock and claim the run dir, resolve its config (a
new run, or a resumed one), build the trainer, and say in one line what was done.

Separate from ``train.py`` so that the entry point parses its arguments (and answers ``--help``)
before torch is imported."""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import search_spaces
from speedynas_core.atomic_io import sweep_temporaries
from speedynas_core.config import load_config
from speedynas_core.distributed import DistEnv, init_distributed, shutdown
from speedynas_core.locks import directory_lock

from .run_dir import config_path, resolve_train_config, saved_config
from .train_config import TrainConfig
from .training import Truth, create_trainer

#: The config sized for a CPU, named when a CPU run is about to train the defaults.
CPU_CONFIG = "configs/nb201_cpu_randnas.yaml"


def train(args: argparse.Namespace) -> int:
    """Train (or resume) the run ``args`` describe (``train.py``'s parsed arguments)."""
    env = DistEnv()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: shutdown(env))
        env, device = init_distributed(device_setting(args))
        if env.is_main:  # one writer per run dir, for the whole job
            stack.enter_context(directory_lock(args.run_dir, "the training run",
                                               create=not args.resume))
        else:
            env.barrier()  # rank 0 creates or checks the run dir first
        cfg = resolve_train_config(args.run_dir, args.config, args.overrides, args.resume,
                                   write=env.is_main)  # claims the run dir first
        if env.is_main:
            sweep_temporaries(args.run_dir, args.run_dir / "checkpoints")
            env.barrier()
        trainer = create_trainer(cfg, args.run_dir, env, device, shipped_truth(cfg.model.space))
        if env.is_main and args.config is None and not args.resume and device.type == "cpu":
            print(defaults_on_cpu_note(cfg, trainer.total_steps), file=sys.stderr, flush=True)
        history = trainer.run()
    if history and env.is_main:
        if trainer.started_at >= trainer.total_steps:
            print(f"{args.run_dir} was already complete ({cfg.optim.epochs} epochs): nothing was "
                  f"trained; its last epoch: {epoch_summary(history[-1])}")
        else:
            print(f"finished {cfg.optim.epochs} epochs in {args.run_dir}: "
                  f"{epoch_summary(history[-1])}")
    return 0

def epoch_summary(last: dict[str, Any]) -> str:
    """An epoch's history entry in a line: losses, accuracies, the derived arch."""
    return (f"train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.4f}"
            + (f", probe acc {last['probe_acc_mean']:.4f}" if "probe_acc_mean" in last else "")
            + (f"; derived arch {last['derived_arch']}" if "derived_arch" in last else "")
            + (f" (true accuracy {last['derived_true_acc']:.2f})"
               if "derived_true_acc" in last else ""))


def defaults_on_cpu_note(cfg: TrainConfig, steps: int) -> str:
    """The line that says, before a CPU run without --config starts, what it is about to
    train (the defaults are the reference recipe, the same on every machine) and which config
    fits a CPU instead."""
    size = ", ".join(f"{key}={value}" for key, value in cfg.model.options().items())
    return (f"note: without --config this trains the defaults, the reference recipe "
            f"({cfg.model.space} supernet {size}, {cfg.optim.epochs} epochs = {steps:,} steps): "
            f"hours on a CPU; for a supernet sized for a CPU, stop it (Ctrl-C) and train with "
            f"--config {CPU_CONFIG} in a new --run-dir")


def shipped_truth(space: str) -> Truth | None:
    """True accuracies from the table ``space`` ships (NAS-Bench-201), which a differentiable
    search logs for its derived arch every epoch; ``None`` for a space that ships none."""
    truth = search_spaces.create(space).ground_truth()
    return None if truth is None else truth.lookup


def device_setting(args: argparse.Namespace) -> str:
    """The device the run asks for: from --config and the overrides, or when resuming from the
    run dir's saved config (whose plugins this command must name to have them imported)."""
    if args.resume and args.config is None and config_path(args.run_dir).exists():
        return load_config(TrainConfig, saved_config(args.run_dir), args.overrides,
                           trust_plugins=False).device
    return load_config(TrainConfig, args.config, args.overrides).device
