"""Seconds per candidate of a search and its per-candidate overhead, against deep-copying.

    python benchmarks/search_overhead.py [--config configs/nb201_cpu_randnas.yaml] [--run-dir DIR]
                                         [--candidates 5] [--budget 100]

Fine-tunes candidates exactly as search.py does (inherited weights, fixed batches, B steps, the
default estimators' validation work) and splits each candidate's wall time into training steps,
validation passes and everything else (extraction, optimizer, params/FLOPs, scoring). In the same
run it times the alternative of deep-copying the whole supernet per candidate. With ``--run-dir``
the trained supernet of that run is used; otherwise a freshly initialised one of the config's size
(timings do not depend on the weights).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from speedynas_core.config import load_config
from estimators import Candidate, create_estimator, needed_records
from speedynas_data.run_data import load_run_data
from speedynas_search.finetune import finetune, prepare_batches
from speedynas_search.search_config import DEFAULT_ESTIMATORS, FinetuneConfig
from supernet import create_supernet
from supernet.measure import arch_flops, arch_parameters
from supernet.run_dir import load_supernet
from supernet.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "nb201_cpu_randnas.yaml"))
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--budget", type=int, default=100)
    args = parser.parse_args()
    if args.run_dir:
        net, cfg, _ = load_supernet(args.run_dir)
    else:
        cfg = load_config(TrainConfig, args.config, [f"data.root={REPO / 'data' / 'cifar10'}"])
        net = create_supernet(cfg.model.space, **cfg.model.options())
    net = net.to(memory_format=torch.channels_last)
    estimators = [create_estimator(name) for name in DEFAULT_ESTIMATORS]
    records = needed_records(estimators)
    ft = FinetuneConfig(budgets=[args.budget])
    data = load_run_data(cfg.data, None, channels_last=True)
    batches = prepare_batches(data, ft, records, torch.device("cpu"))
    archs = net.space.sample_many(args.candidates, np.random.default_rng(0))
    rows = []
    for arch in archs:
        start = time.perf_counter()
        trajectory, times = finetune(net, arch, batches, ft, records)
        candidate = Candidate(str(arch), arch_parameters(arch), arch_flops(arch))
        for estimator in estimators:
            estimator.score(trajectory, candidate, args.budget)
        total = time.perf_counter() - start
        copy_start = time.perf_counter()
        copy.deepcopy(net)
        deepcopy_seconds = time.perf_counter() - copy_start
        extract_start = time.perf_counter()
        net.extract(arch)
        extract_seconds = time.perf_counter() - extract_start
        rows.append((total, times.train, times.validation, extract_seconds, deepcopy_seconds))
        print(f"  {total:6.2f} s/candidate: train steps {times.train:6.2f} s, validation "
              f"{times.validation:5.2f} s, overhead {total - times.train - times.validation:5.3f} s"
              f" | extract {extract_seconds * 1e3:5.1f} ms, deep copy {deepcopy_seconds * 1e3:5.1f} ms")
    total, train, val, extract, deep = (statistics.median(c) for c in zip(*rows))
    overhead = total - train - val
    print(f"{cfg.model.space} {cfg.model.options()} at B={args.budget}, {args.candidates} candidates "
          f"(medians): {total:.2f} s per candidate ({train / args.budget * 1e3:.1f} ms per step); "
          f"overhead {overhead:.3f} s = {overhead / total:.1%} of the candidate (goal <= 5%); "
          f"with a deep copy of the supernet instead of extraction the overhead would be "
          f"{(overhead - extract + deep) / (total - extract + deep):.1%} "
          f"(deep copy {deep * 1e3:.1f} ms vs extract {extract * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
