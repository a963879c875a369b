"""Seconds per candidate of each zero-cost estimator, on inherited and on fresh weights.

    python benchmarks/zero_cost.py [--config configs/nb201_cpu_randnas.yaml] [--run-dir DIR]
                                   [--candidates 5] [--batches 1] [--threads N]

Measures candidates exactly as a zero-cost-only search does (no fine-tune; each estimator on its
own copy of the network, on the first fixed train batches of 64 CIFAR-10 images): once on the
inherited sub-network (``zero_cost.weights=inherited``) and once on the arch's stand-alone
network at the benchmark's size, initialised with a fixed seed (``init``; the time to build
that network is shown separately). With ``--run-dir`` the trained supernet of that run is used;
otherwise a freshly initialised one of the config's size (timings do not depend on the
weights). One warm-up candidate is not counted. Medians over the candidates.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from speedynas_core.config import load_config
from estimators import create_estimator, needed_records
from speedynas_data.run_data import load_run_data
from speedynas_search.finetune import ZeroCostSetup, finetune, prepare_batches
from speedynas_search.search_config import FinetuneConfig
from supernet import create_supernet
from supernet.run_dir import load_supernet
from supernet.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
ZERO_COST = ["grad_norm", "snip", "synflow", "jacov", "nwot"]
MODES = ("inherited", "init")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "nb201_cpu_randnas.yaml"))
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--batches", type=int, default=1, help="zero_cost.batches")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run_dir:
        net, cfg, _ = load_supernet(args.run_dir)
    else:
        cfg = load_config(TrainConfig, args.config, [f"data.root={REPO / 'data' / 'cifar10'}"])
        net = create_supernet(cfg.model.space, **cfg.model.options())
    if cfg.model.channels_last:
        net = net.to(memory_format=torch.channels_last)
    estimators = tuple(create_estimator(name) for name in ZERO_COST)
    records = needed_records(estimators)
    ft = FinetuneConfig(budgets=[1])
    data = load_run_data(cfg.data, None, channels_last=cfg.model.channels_last)
    batches = prepare_batches(data, ft, records, torch.device("cpu"), args.batches)
    archs = net.space.sample_many(args.candidates + 1, np.random.default_rng(0))
    seconds = {mode: {name: [] for name in [*ZERO_COST, "network build"]} for mode in MODES}
    for mode in MODES:
        setup = ZeroCostSetup(estimators, mode, args.batches, seed=0)
        for i, arch in enumerate(archs):
            trajectory, times = finetune(net, arch, batches, ft, records, setup)
            assert not trajectory.train_losses  # zero-cost only: no fine-tune step
            start = time.perf_counter()
            setup.network(net, arch)
            build = time.perf_counter() - start if mode == "init" else 0.0
            if i == 0:
                continue  # warm-up
            for name, value in [*times.zero_cost.items(), ("network build", build)]:
                seconds[mode][name].append(value)
    print(f"{cfg.model.space} {cfg.model.options()}, resolution {cfg.data.resolution}, batch "
          f"{ft.batch_size} x {args.batches}, {args.candidates} candidates, "
          f"{torch.get_num_threads()} threads: seconds per candidate (median)")
    print(f"| {'estimator':<13} | " + " | ".join(f"{m:>9}" for m in MODES) + " |")
    print(f"|{'-' * 15}|" + "|".join("-" * 11 for _ in MODES) + "|")
    for name in [*ZERO_COST, "network build"]:
        print(f"| {name:<13} | " + " | ".join(
            f"{statistics.median(seconds[m][name]):9.4f}" for m in MODES) + " |")
    for mode in MODES:
        total = sum(statistics.median(seconds[mode][n]) for n in [*ZERO_COST, "network build"])
        print(f"all five, {mode}: {total:.3f} s per candidate")


if __name__ == "__main__":
    main()
