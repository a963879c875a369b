"""The derived arch's true accuracy per search epoch for DARTS, DARTS-TSE, DrNAS and DrNAS-TSE.

    python experiments/differentiable.py [--methods darts darts_tse drnas drnas_tse]
        [--seeds 1 2] [--jobs 2] [--work-dir runs/differentiable]
        [--out results/differentiable] [--set KEY=VALUE ...]

Trains ``configs/nb201_cpu_<method>.yaml`` once per method and seed (``seed=S``, ``--set``
overrides added) into ``WORK_DIR/<method>-seed<S>``, ``--jobs`` runs at a time, each one
process with one thread (:mod:`speedynas_core.stages`: the log beside the run dir, the command
recorded in ``OUT/commands.jsonl``). Repeating the command skips finished runs and resumes
killed ones. Reads each run's ``history.json`` (the derived arch and its true accuracy in the
shipped NAS-Bench-201 table after every epoch) and writes ``OUT/derived.csv`` (one row per
method, seed and epoch), ``OUT/derived.md`` (the table, the final archs and the seconds per
epoch) and ``OUT/derived.png``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.stages import Stage, StageRunner, train_stage
from speedynas_search.figures import legend_outside, line_styles, new_figure, save_figure
from speedynas_search.report import format_number

REPO = Path(__file__).resolve().parents[1]
METHODS = ["darts", "darts_tse", "drnas", "drnas_tse"]
PARAMETER_FREE = {"none", "skip_connect", "avg_pool_3x3"}
NB201 = search_spaces.create("nb201")
SKIP = NB201.ops.index("skip_connect")


def parameter_free_edges(arch: str) -> int:
    """How many of the cell's 6 edges hold an op without weights (DARTS's collapse fills
    cells with them)."""
    return sum(op in PARAMETER_FREE for op in NB201.parse(arch).ops)


def skip_weight(mixing_weights: dict[str, list[list[float]]]) -> float:
    """The cell's mean mixing weight of ``skip_connect`` over its edges (0.2 is uniform):
    where α drifts in a collapse."""
    return float(np.mean([edge[SKIP] for edge in mixing_weights["cell"]]))


def training(method: str, seed: int, run_dir: Path, overrides: list[str]) -> Stage:
    """The stage that trains (or resumes) one run."""
    return train_stage(run_dir.name, run_dir, REPO / "configs" / f"nb201_cpu_{method}.yaml",
                       [f"seed={seed}", "log.progress=false", *overrides],
                       log=run_dir.parent / f"{run_dir.name}.log")


def rows_of(runs: list[tuple[str, int, Path]]) -> list[dict[str, Any]]:
    """One row per method, seed and epoch from the runs' histories."""
    rows = []
    for method, seed, run_dir in runs:
        for entry in json.loads((run_dir / "history.json").read_text()):
            rows.append({"method": method, "seed": seed, "epoch": entry["epoch"],
                         "true_acc": entry.get("derived_true_acc"),
                         "seconds": round(entry["seconds"], 1),
                         "train_acc": round(entry["train_acc"], 4),
                         "free_edges": parameter_free_edges(entry["derived_arch"]),
                         "skip_weight": round(skip_weight(entry["mixing_weights"]), 5),
                         "arch": entry["derived_arch"]})
    return rows


def table(rows: list[dict[str, Any]], methods: list[str], seeds: list[int]) -> str:
    """Markdown: mean true accuracy (each seed's) and parameter-free edges per method and
    epoch, the final archs, seconds per epoch."""
    epochs = sorted({r["epoch"] for r in rows})
    by_key = {(r["method"], r["seed"], r["epoch"]): r for r in rows}
    lines = ["True accuracy of the derived arch (mean over seeds, then each seed) and its "
             "parameter-free edges (none, skip, pool; each seed):", "",
             "| epoch | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for epoch in epochs:
        cells = []
        for method in methods:
            own = [by_key[method, s, epoch] for s in seeds if (method, s, epoch) in by_key]
            values = [r["true_acc"] for r in own if r["true_acc"] is not None]
            cells.append(f"{np.mean(values):.2f} ({', '.join(f'{v:.2f}' for v in values)}) "
                         f"[{', '.join(str(r['free_edges']) for r in own)}]" if values else "")
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    lines += ["", "| method | seed | final true acc | final skip weight (uniform 0.2) | s / epoch "
              "| final derived arch |", "|---|---|---|---|---|---|"]
    for method in methods:
        for seed in seeds:
            own = [r for r in rows if r["method"] == method and r["seed"] == seed]
            if own:
                last = own[-1]
                lines.append(f"| {method} | {seed} | {format_number(last['true_acc'])} | "
                             f"{last['skip_weight']:.4f} | "
                             f"{np.mean([r['seconds'] for r in own]):.1f} | `{last['arch']}` |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], methods: list[str], seeds: list[int], path: Path) -> None:
    """Left: true accuracy of the derived arch against the epoch (a style per method, thin: each
    seed, thick: the seed mean); right: its parameter-free edges (seed mean)."""
    fig = new_figure(11, 4.5)
    acc_ax, free_ax = fig.subplots(1, 2, width_ratios=[3, 2])
    for method, style in zip(methods, line_styles(len(methods))):
        curves = {"true_acc": [], "free_edges": []}
        for seed in seeds:
            own = [r for r in rows if r["method"] == method and r["seed"] == seed]
            if own:
                epochs = [r["epoch"] for r in own]
                for key in curves:
                    curves[key].append([r[key] for r in own])
                acc_ax.plot(epochs, curves["true_acc"][-1], color=style["color"],
                            linestyle=style["linestyle"], alpha=0.35, linewidth=1)
        if not curves["true_acc"]:
            continue
        length = min(len(c) for c in curves["true_acc"])
        for ax, key in ((acc_ax, "true_acc"), (free_ax, "free_edges")):
            ax.plot(epochs[:length], np.mean([c[:length] for c in curves[key]], axis=0),
                    **style, linewidth=2,
                    label=f"{method} (mean of {len(curves[key])})" if ax is acc_ax else None)
    acc_ax.set_ylabel("true CIFAR-10 accuracy of the derived arch (%)")
    acc_ax.set_title("The arch each method derives after every epoch")
    free_ax.set_ylabel("edges without weights (none, skip, pool; of 6)")
    free_ax.set_ylim(0, 6)
    free_ax.set_title("Drift to parameter-free ops")
    for ax in (acc_ax, free_ax):
        ax.set_xlabel("search epoch")
        ax.grid(alpha=0.3)
    legend_outside(fig)
    save_figure(fig, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[1, 2])
    parser.add_argument("--jobs", type=positive_int, default=2)
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "differentiable")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "differentiable")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides",
                        help="train.py overrides for new runs")
    args = parser.parse_args(argv)
    runs = [(m, s, args.work_dir / f"{m}-seed{s}") for s in args.seeds for m in args.methods]
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    runner.run([training(*run, args.overrides) for run in runs], args.jobs)
    rows = rows_of(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(args.out / "derived.csv", rows)
    atomic_write_text(args.out / "derived.md", table(rows, args.methods, args.seeds))
    plot(rows, args.methods, args.seeds, args.out / "derived.png")
    print((args.out / "derived.md").read_text())
    return 0


if __name__ == "__main__":
    run_cli(main)
