"""How fast a supernet learns with its sampler's paths against one fixed path, on the same data.

    python benchmarks/supernet_probe.py [--config darts_cpu_randnas | PATH.yaml] [--steps 300]
        [--window 50] [--lrs 0.025] [--set KEY=VALUE ...]

Builds the trainer of ``configs/<--config>.yaml`` (in a temporary run dir, one thread) for each
learning rate and each mode, and runs ``--steps`` training steps on the config's own batches,
with the config's optimizer, clipping and (constant: the schedule is held at the start) learning
rate:

- ``sampled``: the config's sampler draws the path(s) of every step, as ``train.py`` does;
- ``fixed``: every step trains the same single path (drawn once from the space, seed 0).

Prints, per window of ``--window`` steps, the mean training loss and accuracy of each mode. The
gap between the two says how much of the weight-sharing supernet's slowness comes from sharing
the weights among paths rather than from the network or the data.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.config import load_config
from search_spaces.base import Arch
from supernet.train_config import TrainConfig
from supernet.trainer import SupernetTrainer

REPO = Path(__file__).resolve().parents[1]


class FixedPath:
    """A stand-in sampler that trains one path at every step."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch

    def paths(self, rng: np.random.Generator) -> list[Arch]:
        return [self.arch]


def probe_trainer(config: Path, overrides: list[str], mode: str, run_dir: Path
                  ) -> SupernetTrainer:
    """The trainer of ``config`` in ``run_dir`` with its learning rate held at the start and,
    in ``fixed`` mode, one path (drawn with seed 0) in place of its sampler."""
    cfg = load_config(TrainConfig, config, [*overrides, "log.probe_archs=0"])
    trainer = SupernetTrainer(cfg, run_dir)
    trainer.scheduler.step = lambda *args, **kwargs: None
    if mode == "fixed":
        trainer.sampler = FixedPath(trainer.net.space.sample(np.random.default_rng(0)))
    return trainer


def probe(config: Path, overrides: list[str], mode: str, steps: int
          ) -> tuple[list[float], list[float], float]:
    """Per-step training loss and accuracy of ``steps`` steps, and the seconds they took."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = probe_trainer(config, overrides, mode, Path(run_dir))
        losses, accs = [], []
        start = time.perf_counter()
        for x, y in trainer.batches.take(steps):
            loss, acc, _ = trainer.train_step(x, y)
            losses.append(loss)
            accs.append(acc)
        return losses, accs, time.perf_counter() - start


def windows(values: list[float], size: int) -> str:
    return " ".join(f"{np.mean(values[i:i + size]):.2f}" for i in range(0, len(values), size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="darts_cpu_randnas",
                        help="configs/<name>.yaml, or a path to a training config")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.025])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training config overrides")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Path(args.config) if args.config.endswith(".yaml") else \
        REPO / "configs" / f"{args.config}.yaml"
    print(f"{args.config}, {args.steps} steps, one thread, learning rate held constant; "
          f"means over windows of {args.window} steps")
    print("| lr | path | training loss | training accuracy | s/step |")
    print("|---|---|---|---|---|")
    for lr in args.lrs:
        for mode in ("sampled", "fixed"):
            losses, accs, seconds = probe(config, [*args.set, f"optim.lr={lr}"], mode,
                                          args.steps)
            print(f"| {lr:g} | {mode} | {windows(losses, args.window)} | "
                  f"{windows(accs, args.window)} | {seconds / args.steps:.3f} |", flush=True)


if __name__ == "__main__":
    main()
