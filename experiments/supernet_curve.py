"""TSE's ranking quality as a function of supernet training, per sampler, resumably.

    python experiments/supernet_curve.py [--samplers randnas fairnas multipaths]
        [--epochs 40] [--every 5] [--work-dir runs/curve] [--out results/supernet_curve]
        [--processes 2] [--search-epochs E ...] [--train KEY=VALUE ...] [--search KEY=VALUE ...]

For each sampler: train ``configs/nb201_cpu_<sampler>.yaml`` for ``--epochs`` epochs (its
recipe otherwise unchanged; one cosine schedule over all of them), keeping a checkpoint every
``--every`` epochs, then search every kept checkpoint (``supernet_epoch``) on the same 100
tuning candidates (seed 7, never the reported seed 123) at B = 100 with TSE, TSE-E, params,
three zero-cost proxies and two rank combinations (``configs/search_cpu.yaml`` otherwise).
Each stage is a subprocess (:mod:`speedynas_core.stages`: logs in the work dir, commands
recorded in ``OUT/commands.jsonl``), under ``torchrun --nproc_per_node=--processes`` with more
than one process; repeating the command skips finished stages and resumes killed ones
(training from its checkpoint, a search from its results). Writes
``OUT/curve.md`` (Spearman [bootstrap 95 % interval] per sampler, epoch and estimator, with
each stage's minutes) and ``OUT/curve.png``.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import atomic_write_text
from speedynas_core.cli import positive_int, run_cli
from speedynas_core.stages import Stage, StageRunner, search_stage, train_stage
from speedynas_search.figures import legend_outside, line_styles, new_figure, save_figure
from speedynas_search.report import with_interval
from supernet.run_dir import kept_epochs

REPO = Path(__file__).resolve().parents[1]
ESTIMATORS = ["tse", "tse_e", "params", "synflow", "jacov", "nwot", "combo(tse+params)",
              "combo(tse+synflow+jacov+nwot)"]
PLOTTED = ["tse", "tse_e", "params", "combo(tse+synflow+jacov+nwot)"]


def training(sampler: str, run_dir: Path, args: argparse.Namespace) -> Stage:
    """The stage that trains (or resumes) ``sampler``'s supernet for ``--epochs``, keeping a
    checkpoint every ``--every``."""
    return train_stage(f"{sampler}/train", run_dir,
                       REPO / "configs" / f"nb201_cpu_{sampler}.yaml",
                       [f"optim.epochs={args.epochs}", f"log.keep_every={args.every}",
                        "log.progress=false", *args.train],
                       log=run_dir.parent / f"{sampler}-train.log", processes=args.processes)


def search(sampler: str, run_dir: Path, epoch: int, args: argparse.Namespace) -> Stage:
    """The stage that searches the checkpoint kept after ``epoch``."""
    name = f"curve-e{epoch}"
    return search_stage(f"{sampler}/{name}", run_dir, REPO / "configs" / "search_cpu.yaml",
                        [f"supernet_epoch={epoch}", "candidates.seed=7", "candidates.num=100",
                         "finetune.budgets=[100]", "retrain.enabled=false", "progress=false",
                         f"estimators.names=[{', '.join(ESTIMATORS)}]", *args.search],
                        search_name=name, log=run_dir / f"{name}.log",
                        processes=args.processes)


def training_minutes(run_dir: Path) -> float:
    """The run's training minutes, all epochs."""
    return sum(h["seconds"] for h in json.loads((run_dir / "history.json").read_text())) / 60


def table(rows: list[dict[str, Any]], minutes: dict[str, float], command: str) -> str:
    """curve.md: Spearman [interval] per sampler, epoch and estimator."""
    lines = [f"Command: `{command}`", "",
             "| sampler | epoch | " + " | ".join(ESTIMATORS) + " | search min |",
             "|---|---|" + "---|" * (len(ESTIMATORS) + 1)]
    for row in rows:
        cells = []
        for name in ESTIMATORS:
            cells.append(with_interval(row["metrics"][name], "spearman"))
        lines.append(f"| {row['sampler']} | {row['epoch']} | " + " | ".join(cells)
                     + f" | {row['minutes']:.1f} |")
    lines += ["", "Training minutes (all epochs, this machine): "
              + ", ".join(f"{s} {m:.1f}" for s, m in minutes.items()), "",
              "Spearman with NB201 cifar10_test on 100 candidates (seed 7) at B = 100, "
              "[bootstrap 95 % interval over the candidates]."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Spearman against supernet epochs: one panel per sampler, one style per estimator."""
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    fig = new_figure(4.2 * len(samplers) + 2.5, 3.8)
    axes = fig.subplots(1, len(samplers), squeeze=False, sharey=True)[0]
    for ax, sampler in zip(axes, samplers):
        mine = [r for r in rows if r["sampler"] == sampler]
        for name, style in zip(PLOTTED, line_styles(len(PLOTTED))):
            values = [r["metrics"][name] for r in mine]
            epochs = [r["epoch"] for r in mine]
            ax.plot(epochs, [v["spearman"] for v in values], label=name, **style)
            lows = [(v.get("spearman_ci") or [v["spearman"]] * 2)[0] for v in values]
            highs = [(v.get("spearman_ci") or [v["spearman"]] * 2)[1] for v in values]
            ax.fill_between(epochs, lows, highs, color=style["color"], alpha=0.12)
        ax.set_title(sampler)
        ax.set_xlabel("supernet epochs")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Spearman (100 candidates, B = 100)")
    handles, labels = axes[0].get_legend_handles_labels()
    legend_outside(fig, handles=handles, labels=labels)
    save_figure(fig, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["randnas", "fairnas", "multipaths"])
    parser.add_argument("--epochs", type=positive_int, default=40)
    parser.add_argument("--every", type=positive_int, default=5)
    parser.add_argument("--processes", type=positive_int, default=2)
    parser.add_argument("--search-epochs", nargs="*", type=positive_int,
                        help="search only these kept epochs (default: every kept one)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "curve")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "supernet_curve")
    parser.add_argument("--train", nargs="*", default=[], help="train.py overrides")
    parser.add_argument("--search", nargs="*", default=[], help="search.py overrides")
    args = parser.parse_args(argv)
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    rows, minutes = [], {}
    for sampler in args.samplers:
        run_dir = args.work_dir / sampler
        runner.run([training(sampler, run_dir, args)])
        minutes[sampler] = training_minutes(run_dir)
        epochs = [e for e in kept_epochs(run_dir)
                  if not args.search_epochs or e in args.search_epochs]
        searches = [search(sampler, run_dir, epoch, args) for epoch in epochs]
        runner.run(searches)
        for epoch, stage in zip(epochs, searches):
            summary = json.loads(stage.output.read_text())
            rows.append({"sampler": sampler, "epoch": epoch,
                         "metrics": {n: summary["metrics"][n]["100"] for n in ESTIMATORS},
                         "minutes": summary["search_wall_seconds"] / 60})
            print(f"{sampler} epoch {epoch}: tse {rows[-1]['metrics']['tse']['spearman']:.3f}",
                  flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "experiments/supernet_curve.py", *argv])
    atomic_write_text(args.out / "curve.md", table(rows, minutes, command))
    plot(rows, args.out / "curve.png")
    print((args.out / "curve.md").read_text())
    return 0


if __name__ == "__main__":
    run_cli(main)
