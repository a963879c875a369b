"""Seconds per epoch of the differentiable methods against the single-path supernet's.

    python benchmarks/differentiable_speed.py [--steps 10] [--rounds 3] [--threads 1]

Builds, on real CIFAR-10 images, the trainer of each NB201 CPU config
(``configs/nb201_cpu_<method>.yaml``: C = 8, N = 1, 32 px, batch 64) and of the single-path
RandNAS supernet at the same size and data (``configs/nb201_cpu_randnas.yaml`` with the same
5,000 training images), and times ``--steps`` training steps of each, the methods interleaved
for ``--rounds`` rounds (median per step), in one process with ``--threads`` threads. Prints
seconds per step, seconds per epoch (steps per epoch x median) and the ratio to the single-path
step, and the forward-backward passes each step needs by its algorithm (DARTS and DrNAS: a
validation pass for α and a training pass for the weights; the TSE variants: one training pass
that gives both gradients).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from supernet.training import create_trainer
from supernet.run_dir import resolve_train_config

REPO = Path(__file__).resolve().parents[1]
METHODS = ["randnas", "darts", "darts_tse", "drnas", "drnas_tse"]
PASSES = {"randnas": 1, "darts": 2, "darts_tse": 1, "drnas": 2, "drnas_tse": 1}


def build(method: str, work: Path, data_root: str):
    """The trainer of ``method``'s CPU config (RandNAS: on the same 5,000 images)."""
    overrides = [f"data.root={data_root}", "log.progress=false", "log.probe_archs=0"]
    if method == "randnas":
        overrides += ["data.train_size=5000", "data.val_size=5000"]
    cfg = resolve_train_config(work / method, str(REPO / "configs" / f"nb201_cpu_{method}.yaml"),
                               overrides, resume=False)
    return create_trainer(cfg, work / method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=str(REPO / "data" / "cifar10"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        trainers = {m: build(m, Path(work), args.data_root) for m in METHODS}
        per_step: dict[str, list[float]] = {m: [] for m in METHODS}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for method, trainer in trainers.items():
                batches = list(trainer.batches.take(args.steps))
                start = time.perf_counter()
                for x, y in batches:
                    trainer.train_step(x, y)
                    trainer.step += 1
                if round_:
                    per_step[method].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(per_step["randnas"])
    steps = len(trainers["randnas"].batches)
    print(f"NB201 C=8 N=1, 32 px, batch 64, {steps} steps per epoch (5,000 training images), "
          f"{args.threads} thread(s), median of {args.rounds} rounds of {args.steps} steps")
    print(f"{'method':<10} {'passes':>6} {'s/step':>8} {'s/epoch':>8} {'x single path':>14}")
    for method in METHODS:
        median = statistics.median(per_step[method])
        print(f"{method:<10} {PASSES[method]:>6} {median:8.3f} {median * steps:8.1f} "
              f"{median / base:14.2f}")


if __name__ == "__main__":
    main()
