"""Spearman of zero-cost proxies with NB201 CIFAR-10 test accuracy, and their seconds per cell.

    python experiments/zero_cost_truth.py [--proxies meco zico] [--cells 100] [--seed 0]
        [--threads 1] [--reference ../shared/benchmarks/nb201_zc_reference.json]

The cells are the first ``--cells`` of ``experiments/zero_cost_reference.py``'s sample (the
same seeded permutation), each measured as the search measures zero-cost proxies and as that
experiment does: the cell's stand-alone network at C=16, N=5 freshly initialised from seed 0,
on the search's first fixed CIFAR-10 train batch (64 images at 32 px, batch seed 0). Each
proxy's Spearman with the shipped ``cifar10_test`` column and its bootstrap 95 % interval are
printed beside its median seconds per cell; the proxies ``zero_cost_reference.py`` already
measured on these cells (its ``values.csv``) are printed too, for comparison on the same cells.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from estimators import create_estimator
from search_spaces import create as create_space
from search_spaces import create_ground_truth
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.config import load_config
from speedynas_data.run_data import load_run_data
from speedynas_search.finetune import ZeroCostSetup, prepare_batches
from speedynas_search.metrics import rank_metrics
from speedynas_search.search_config import FinetuneConfig
from supernet import create_supernet
from supernet.train_config import TrainConfig

from zero_cost_reference import REFERENCE, REPO, read_values, sample_cells, values_path


def measure(cells: list[str], proxies: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per proxy: its value and its seconds on each cell, in order."""
    cfg = load_config(TrainConfig, REPO / "configs" / "nb201_cpu_randnas.yaml",
                      [f"data.root={REPO / 'data' / 'cifar10'}", "data.resolution=32"])
    batches = prepare_batches(load_run_data(cfg.data, None, False), FinetuneConfig(batch_size=64),
                              set(), torch.device("cpu"), zero_cost_batches=1).train[:1]
    setup = ZeroCostSetup(tuple(create_estimator(name) for name in proxies), "init", 1, seed=0,
                          network_size={"C": 16, "N": 5})
    space, host = create_space("nb201"), create_supernet("nb201", C=4, N=1)
    out = {name: {"values": [], "seconds": []} for name in proxies}
    for i, arch in enumerate(cells, 1):
        values, seconds = setup.measure(setup.network(host, space.parse(arch)), batches)
        for name in proxies:
            out[name]["values"].append(values[name])
            out[name]["seconds"].append(seconds[name])
        print(f"[{i}/{len(cells)}] {arch} " + " ".join(f"{n}={values[n]:.4g}" for n in proxies),
              flush=True)
    return out


def row(name: str, values: list[float], truths: list[float], seconds: str) -> str:
    """One markdown table row: Spearman with the truths, its interval, seconds per cell."""
    m = rank_metrics(values, truths)
    low, high = m["spearman_ci"] or (float("nan"), float("nan"))
    return (f"| {name} | {m['n']} | {m['nonfinite']} | {m['spearman']:.3f} | "
            f"[{low:.3f}, {high:.3f}] | {seconds} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", nargs="+", default=["meco", "zico"])
    parser.add_argument("--cells", type=positive_int, default=100)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cells = sample_cells(json.loads(args.reference.read_text())["archs"], args.cells, args.seed)
    truth = create_ground_truth("nb201", space="nb201", column="cifar10_test")
    truths = [truth.lookup(arch) for arch in cells]
    measured = measure(cells, args.proxies)
    lines = ["| proxy | cells | non-finite | Spearman with cifar10_test | 95 % interval | "
             "median s/cell |", "|---|---|---|---|---|---|"]
    lines += [row(name, m["values"], truths, f"{statistics.median(m['seconds']):.3f}")
              for name, m in measured.items()]
    stored = read_values(values_path(REPO / "results" / "zero_cost_reference", 0))
    if set(cells) <= set(stored):
        names = [k for k in next(iter(stored.values())) if not k.endswith("_reference")]
        lines += [row(f"{name} (values.csv)", [stored[a][name] for a in cells], truths, "")
                  for name in names]
    print("\n".join(lines))


if __name__ == "__main__":
    run_cli(main)
