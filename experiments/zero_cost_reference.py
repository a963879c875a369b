"""Rank agreement of our zero-cost proxies with NAS-Bench-Suite-Zero's stored values.

    python experiments/zero_cost_reference.py [--cells 200] [--seed 0] [--init-seed 0]
        [--threads 1] [--reference ../shared/benchmarks/nb201_zc_reference.json]
        [--out results/zero_cost_reference]

A uniform sample of the reference's NB201 cells (the first ``--cells`` of a seeded permutation,
so a larger sample extends a smaller one) is measured as the reference was, as far as its
description tells: each cell's stand-alone NB201 network at C=16, N=5, freshly initialised
(seed 0, the search's ``zero_cost.weights=init``), on one CIFAR-10 training batch of 64 images
at 32 px (the search's first fixed train batch, cropped and flipped), each proxy on its own
train-mode copy of the network. Per-cell values (ours and the reference's) are appended to
``values.csv``; cells already there are skipped, so an interrupted run resumes. Then each
proxy's Spearman with the stored values over the sample and its bootstrap 95 % interval go to
``agreement.csv`` and ``agreement.md`` and are printed.

The reference was measured on another initialisation and another batch, so a proxy that
depends on them cannot agree perfectly. ``--init-seed S`` (S > 0) measures the cells again with
init seed S and batch seed S into ``values_seed{S}.csv``; every such file holding the whole
sample adds a column to the table: the Spearman of our own values, seed S against seed 0 (the
ceiling noise alone allows).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from estimators import create_estimator
from search_spaces import create as create_space
from speedynas_core.atomic_io import atomic_write_csv
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.config import load_config
from speedynas_data.run_data import load_run_data
from speedynas_search.finetune import ZeroCostSetup, prepare_batches
from speedynas_search.metrics import rank_metrics
from speedynas_search.search_config import FinetuneConfig
from supernet import create_supernet
from supernet.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "benchmarks" / "nb201_zc_reference.json"
PROXIES = ["grad_norm", "snip", "synflow", "jacov", "nwot",
           "l2_norm", "plain", "fisher", "grasp", "epe_nas", "zen"]
BAR = 0.95


def sample_cells(reference: dict[str, dict], cells: int, seed: int) -> list[str]:
    """The first ``cells`` of a seeded permutation of the reference's cells (sorted first)."""
    archs = sorted(reference)
    order = np.random.default_rng(seed).permutation(len(archs))
    return [archs[i] for i in order[:cells]]


def read_values(path: Path) -> dict[str, dict[str, float]]:
    """The per-cell rows already measured, by arch (empty when the file does not exist)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row["arch"]: {k: float(v) for k, v in row.items() if k != "arch"}
                for row in csv.DictReader(f)}


def values_path(out: Path, seed: int) -> Path:
    """Where the per-cell values of init and batch seed ``seed`` go."""
    return out / ("values.csv" if seed == 0 else f"values_seed{seed}.csv")


def measure_missing(cells: list[str], reference: dict[str, dict], path: Path,
                    seed: int = 0) -> None:
    """Measure every cell not yet in ``path`` (init and batch seed ``seed``) and append its
    row (flushed per cell)."""
    done = read_values(path)
    todo = [arch for arch in cells if arch not in done]
    if not todo:
        return
    cfg = load_config(TrainConfig, REPO / "configs" / "nb201_cpu_randnas.yaml",
                      [f"data.root={REPO / 'data' / 'cifar10'}", "data.resolution=32"])
    estimators = tuple(create_estimator(name) for name in PROXIES)
    finetune_cfg = FinetuneConfig(batch_size=64, seed=seed)
    batches = prepare_batches(load_run_data(cfg.data, None, False), finetune_cfg, set(),
                              torch.device("cpu"), zero_cost_batches=1).train[:1]
    setup = ZeroCostSetup(estimators, "init", 1, seed=seed, network_size={"C": 16, "N": 5})
    space = create_space("nb201")
    host = create_supernet("nb201", C=4, N=1)  # only gives the class count and the device
    fields = ["arch", *PROXIES, *(f"{name}_reference" for name in PROXIES)]
    new_file = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new_file:
            writer.writeheader()
        for i, arch in enumerate(todo, 1):
            values, _ = setup.measure(setup.network(host, space.parse(arch)), batches)
            writer.writerow({"arch": arch, **values,
                             **{f"{n}_reference": reference[arch][n] for n in PROXIES}})
            f.flush()
            print(f"[{i}/{len(todo)}] {arch}", flush=True)


def agreement(cells: list[str], out: Path) -> list[dict[str, object]]:
    """Per proxy: cells, our non-finite values, Spearman with the reference and its interval,
    and (``seed S vs 0``) that of our values at each other seed measured on every cell."""
    values = read_values(values_path(out, 0))
    repeats = {int(p.stem.removeprefix("values_seed")): read_values(p)
               for p in sorted(out.glob("values_seed*.csv"))}
    repeats = {seed: rows for seed, rows in repeats.items() if set(cells) <= set(rows)}
    rows = []
    for name in PROXIES:
        pairs = [(values[a][name], values[a][f"{name}_reference"]) for a in cells]
        pairs = [(ours, ref) for ours, ref in pairs if np.isfinite(ref)]
        metrics = rank_metrics([p[0] for p in pairs], [p[1] for p in pairs])
        low, high = metrics["spearman_ci"] or (float("nan"), float("nan"))
        rows.append({"proxy": name, "cells": metrics["n"], "nonfinite": metrics["nonfinite"],
                     "spearman": metrics["spearman"], "low": low, "high": high,
                     "meets_bar": metrics["spearman"] is not None and metrics["spearman"] >= BAR})
        for seed, repeat in repeats.items():
            rows[-1][f"seed {seed} vs 0"] = rank_metrics(
                [repeat[a][name] for a in cells], [values[a][name] for a in cells],
                resamples=0)["spearman"]
    return rows


def write_tables(rows: list[dict[str, object]], out: Path) -> str:
    """Write ``agreement.csv`` and ``agreement.md``; the markdown table."""
    atomic_write_csv(out / "agreement.csv", rows)
    repeats = [key for key in rows[0] if key.startswith("seed ")]
    lines = [f"| proxy | cells | ours non-finite | Spearman with reference | 95 % interval | "
             f">= {BAR} |" + "".join(f" ours, {key} |" for key in repeats),
             "|---|---|---|---|---|---|" + "---|" * len(repeats)]
    lines += [f"| {r['proxy']} | {r['cells']} | {r['nonfinite']} | {r['spearman']:.3f} | "
              f"[{r['low']:.3f}, {r['high']:.3f}] | {'yes' if r['meets_bar'] else 'no'} |"
              + "".join(f" {r[key]:.3f} |" for key in repeats) for r in rows]
    table = "\n".join(lines) + "\n"
    (out / "agreement.md").write_text(table)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=positive_int, default=200)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--init-seed", type=non_negative_int, default=0,
                        help="seed of the initialisation and the batch (0: values.csv)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "zero_cost_reference")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reference = json.loads(args.reference.read_text())["archs"]
    cells = sample_cells(reference, args.cells, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    measure_missing(cells, reference, values_path(args.out, args.init_seed), args.init_seed)
    if set(cells) <= set(read_values(values_path(args.out, 0))):
        print(write_tables(agreement(cells, args.out), args.out), end="")
    else:
        print(f"measure the seed-0 values of these {len(cells)} cells for the table")


if __name__ == "__main__":
    run_cli(main)
