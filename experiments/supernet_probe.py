"""How fast a supernet learns with its sampler's paths against one fixed path, on the same data.

    python experiments/supernet_probe.py [--config darts_cpu_randnas | PATH.yaml] [--steps 300]
        [--window 50] [--lrs 0.025] [--modes sampled fixed ...] [--set KEY=VALUE ...]

Builds the trainer of ``configs/<--config>.yaml`` (in a temporary run dir, one thread) for each
learning rate and each mode, and runs ``--steps`` training steps on the config's own batches,
with the config's optimizer, clipping and (constant: the schedule is held at the start) learning
rate:

- ``sampled``: the config's sampler draws the path(s) of every step, as ``train.py`` does;
- ``fixed``: every step trains the same single path (drawn once from the space, seed 0);
- DARTS only, one uniform genotype per step with: ``fixed-ops`` the fixed genotype's op in
  every (op, input) pair, ``fixed-inputs`` its inputs, ``convs-only`` ops drawn among the four
  convolutions.

Prints, per window of ``--window`` steps, the mean training loss and accuracy of each mode. The
gap between the modes says how much of the weight-sharing supernet's slowness comes from sharing
the weights among paths rather than from the network or the data.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speedynas_core.cli import positive_int, run_cli
from speedynas_core.config import load_config
from search_spaces.base import Arch, SearchSpace
from search_spaces.darts import CANDIDATE_OPS, DartsArch
from supernet.train_config import TrainConfig
from supernet.trainer import SupernetTrainer

REPO = Path(__file__).resolve().parents[1]


class FixedPath:
    """A stand-in sampler that trains one path at every step."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch

    def paths(self, rng: np.random.Generator) -> list[Arch]:
        return [self.arch]


class PartlyFixedDarts:
    """A stand-in sampler for the DARTS space: a uniform genotype per step with part of every
    (op, input) pair taken from one fixed genotype, or its ops drawn among the convolutions."""

    def __init__(self, space: SearchSpace, fixed: DartsArch, mode: str) -> None:
        self.space, self.fixed, self.mode = space, fixed, mode

    def pair(self, drawn: tuple[str, int], fixed: tuple[str, int], rng: np.random.Generator
             ) -> tuple[str, int]:
        if self.mode == "fixed-ops":
            return fixed[0], drawn[1]
        if self.mode == "fixed-inputs":
            return drawn[0], fixed[1]
        return CONVOLUTIONS[int(rng.integers(len(CONVOLUTIONS)))], drawn[1]

    def paths(self, rng: np.random.Generator) -> list[Arch]:
        drawn = self.space.sample(rng)
        cells = [tuple(self.pair(d, f, rng) for d, f in zip(getattr(drawn, name),
                                                             getattr(self.fixed, name)))
                 for name in ("normal", "reduce")]
        return [DartsArch(normal=cells[0], reduce=cells[1])]


CONVOLUTIONS = [op for op in CANDIDATE_OPS if "conv" in op]
MODES = ("sampled", "fixed")
DARTS_MODES = ("fixed-ops", "fixed-inputs", "convs-only")


def probe_trainer(config: Path, overrides: list[str], mode: str, run_dir: Path
                  ) -> SupernetTrainer:
    """The trainer of ``config`` in ``run_dir`` with its learning rate held at the start and,
    unless ``mode`` is ``sampled``, a stand-in sampler (its fixed genotype drawn with seed 0)."""
    cfg = load_config(TrainConfig, config, [*overrides, "log.probe_archs=0"])
    trainer = SupernetTrainer(cfg, run_dir)
    trainer.scheduler.step = lambda *args, **kwargs: None
    space = trainer.net.space
    fixed = space.sample(np.random.default_rng(0))
    if mode == "fixed":
        trainer.sampler = FixedPath(fixed)
    elif mode in DARTS_MODES:
        if not isinstance(fixed, DartsArch):
            raise SystemExit(f"mode {mode} needs the DARTS space, not {space.name}")
        trainer.sampler = PartlyFixedDarts(space, fixed, mode)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="darts_cpu_randnas",
                        help="configs/<name>.yaml, or a path to a training config")
    parser.add_argument("--steps", type=positive_int, default=300)
    parser.add_argument("--window", type=positive_int, default=50)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.025])
    parser.add_argument("--modes", nargs="+", choices=MODES + DARTS_MODES, default=list(MODES))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training config overrides")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = Path(args.config) if args.config.endswith(".yaml") else \
        REPO / "configs" / f"{args.config}.yaml"
    print(f"{args.config}, {args.steps} steps, one thread, learning rate held constant; "
          f"means over windows of {args.window} steps")
    print("| lr | path | training loss | training accuracy | s/step |")
    print("|---|---|---|---|---|")
    for lr in args.lrs:
        for mode in args.modes:
            losses, accs, seconds = probe(config, [*args.set, f"optim.lr={lr}"], mode,
                                          args.steps)
            print(f"| {lr:g} | {mode} | {windows(losses, args.window)} | "
                  f"{windows(accs, args.window)} | {seconds / args.steps:.3f} |", flush=True)


if __name__ == "__main__":
    run_cli(main)
