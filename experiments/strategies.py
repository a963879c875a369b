"""Compare search strategies against the NAS-Bench-201 table, resumably, in one command.

    python experiments/strategies.py [--modes table cpu guided guided_cpu]
        [--run-dir runs/quickstart] [--train-config quickstart] [--table-seeds 20]
        [--cpu-seeds 3] [--guided-seeds 10]
        [--arms sample evolution ...] [--jobs 2] [--out results/strategies]

The run dir holds the supernet of ``configs/<--train-config>.yaml`` (trained first when
missing: about 2-3 minutes on a CPU for the quick-start one; ``--train-config nb201_cpu_randnas
--run-dir runs/reproduce/nb201_cpu_randnas`` searches the table's 32 px supernet instead).

Each arm (a strategy and its fitness) is searched once per seed with ``search.py --config
configs/search_strategies_<mode>.yaml`` into ``RUN_DIR/search/<mode>-<arm>-s<seed>`` (seed s
sets the candidate draw and the strategy's own seed), ``--jobs`` searches side by side, each a
subprocess with one thread (:mod:`speedynas_core.stages`: logs in ``RUN_DIR/search/logs/``,
commands recorded in ``OUT/commands.jsonl``); a finished search is not run again, a killed one
resumes. ``table`` mode scores with columns of the shipped table (table lookups:
the supernet's weights are not used, and any NB201 run dir gives the same numbers), ``cpu``
mode with a real fine-tune of the run's supernet. ``guided`` mode runs the predictor-guided
strategy on table labels (``cifar10_valid_val``, each counted) with free or zero-cost features,
``guided_cpu`` mode with the supernet's TSE as one more feature; both on seeds 1..N (their
settings were chosen on seeds 100-104). The script then writes
``OUT/<mode>_runs.csv`` (one row per search: the incumbent's true CIFAR-10 test accuracy, its
rank among the 15,625 archs, steps and minutes spent), ``OUT/<mode>_table.md`` (means over the
seeds with bootstrap 95 % intervals) and ``OUT/incumbent_<mode>.png`` (mean incumbent accuracy
against steps or evaluations, and against seconds); multi-objective arms add the hypervolume
coverage of their fronts and ``OUT/front_<mode>-<arm>.png`` (seed 0).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text
from speedynas_core.cli import positive_int, run_cli
from speedynas_core.stages import Stage, StageRunner, search_stage, train_stage
from speedynas_search.figures import legend_outside, line_styles, new_figure, save_figure
from speedynas_search.metrics import mean_interval
from speedynas_search.report import value_with_interval

REPO = Path(__file__).resolve().parents[1]
COMBO = "combo(tse+synflow+jacov+nwot)"


@dataclass(frozen=True)
class Arm:
    """One strategy with its fitness (``overrides`` on top of the mode's config)."""

    strategy: str
    fitness: str
    overrides: tuple[str, ...] = ()
    seeded: bool = False  # the strategy takes a seed option (set to the run's seed)


def training_free(strategy: str, fitness: str, *extra: str) -> Arm:
    """``strategy`` with a training-free fitness measured at the benchmark's size (C=16, N=5):
    200 evaluations, no fine-tune steps (``extra``: more overrides)."""
    members = fitness[len("combo("):-1].split("+")
    return Arm(strategy, f"{fitness} (training-free)", (
        f"strategy.name={strategy}", f"estimators.names=[{fitness},{','.join(members)}]",
        f"strategy.fitness={fitness}", "finetune.budgets=[0]", "limit.steps=null",
        "limit.evaluations=200", "zero_cost.C=16", "zero_cost.N=5", *extra),
        seeded=strategy == "evolution")


ARMS: dict[str, dict[str, Arm]] = {
    "table": {
        "sample-test": Arm("sample", "table cifar10_test (oracle of random sampling)",
                           ("strategy.name=sample", "estimators.table.column=cifar10_test")),
        "sample-12ep": Arm("sample", "table cifar10_test_12ep_1seed",
                           ("strategy.name=sample",
                            "estimators.table.column=cifar10_test_12ep_1seed")),
        "evolution-valid": Arm("evolution", "table cifar10_valid_val", (), seeded=True),
        "evolution-12ep": Arm("evolution", "table cifar10_test_12ep_1seed",
                              ("estimators.table.column=cifar10_test_12ep_1seed",), seeded=True),
        "local-valid": Arm("local", "table cifar10_valid_val", ("strategy.name=local",)),
        "evolution-mo-valid": Arm("evolution", "table cifar10_valid_val + params",
                                  ("strategy.objectives=[params]",), seeded=True),
        # 50 table queries: the label budget of the guided arms.
        "evolution-valid-50": Arm("evolution", "table cifar10_valid_val, 50 queries",
                                  ("limit.evaluations=50",), seeded=True),
        "sample-valid-50": Arm("sample", "table cifar10_valid_val, 50 queries",
                               ("strategy.name=sample", "limit.evaluations=50")),
    },
    # Predictor-guided search spending 50 (or 20) labels, each a cifar10_valid_val query, on
    # cheap features; settings chosen on tuning seeds 100-104, reported on seeds 1..N
    # (results/guided/NOTES.md).
    "guided": {
        "guided-free": Arm("guided", "rf on graph features + size",
                           ("estimators.names=[params]", "strategy.signals=[graph, size]"),
                           seeded=True),
        "guided-free-20": Arm("guided", "rf on graph features + size",
                              ("estimators.names=[params]", "strategy.signals=[graph, size]",
                               "strategy.labels=20", "strategy.initial=6"), seeded=True),
        "guided-zc-20": Arm("guided", "rf on zero-cost proxies + graph features + size",
                            ("strategy.labels=20", "strategy.initial=6",
                             "strategy.mutations=20"), seeded=True),
    },
    # The same with the CPU supernet's TSE at B = 100 as one more feature, 20 labels.
    "guided_cpu": {
        "guided-tse": Arm("guided", "rf on TSE + zero-cost proxies + graph features + size", (),
                          seeded=True),
    },
    "cpu": {
        "sample": Arm("sample", COMBO, ("strategy.name=sample",)),
        "evolution": Arm("evolution", COMBO, (), seeded=True),
        "halving": Arm("halving", f"combo(synflow+jacov+nwot) -> {COMBO}", (
            "strategy.name=halving", "strategy.sizes=[1000,140,20]",
            "strategy.rung_steps=[0,100,300]",
            f"strategy.rung_fitness=[combo(synflow+jacov+nwot),{COMBO},{COMBO}]")),
        "local": Arm("local", COMBO, ("strategy.name=local",)),
        "evolution-mo": Arm("evolution", f"{COMBO} + params", ("strategy.objectives=[params]",),
                            seeded=True),
        # Training-free fitnesses (200 evaluations, no fine-tune steps), chosen on tuning seeds 7
        # and 123 for ordering the true top 10 % (results/strategies/NOTES.md).
        "evolution-zc3": training_free("evolution", "combo(params+synflow+jacov)"),
        "evolution-zc2": training_free("evolution", "combo(synflow+jacov)"),
        "sample-zc2": training_free("sample", "combo(synflow+jacov)"),
        "evolution-mo-zc2": training_free("evolution", "combo(synflow+jacov)",
                                          "strategy.objectives=[params]"),
        # The best combination by mean Spearman over the three candidate draws of issue 17
        # (results/cpu-table2/draws, RandNAS, B = 100): zero-cost members at C=16, N=5 as there.
        "evolution-tse-synflow-jacov": Arm("evolution", "combo(tse+synflow+jacov)", (
            "strategy.fitness=combo(tse+synflow+jacov)",
            "estimators.names=[combo(tse+synflow+jacov),tse,synflow,jacov,params]",
            "zero_cost.C=16", "zero_cost.N=5"), seeded=True),
    },
}


def search_name(mode: str, arm: str, seed: int) -> str:
    return f"{mode}-{arm}-s{seed}"


def search(run_dir: Path, mode: str, arm_name: str, seed: int) -> Stage:
    """The stage of one (arm, seed) search of ``mode`` (one thread)."""
    arm, name = ARMS[mode][arm_name], search_name(mode, arm_name, seed)
    overrides = ["progress=false", "threads=1", f"candidates.seed={seed}", *arm.overrides,
                 *([f"strategy.seed={seed}"] if arm.seeded else [])]
    return search_stage(name, run_dir, REPO / "configs" / f"search_strategies_{mode}.yaml",
                        overrides, search_name=name,
                        log=run_dir / "search" / "logs" / f"{name}.log")


def collect(run_dir: Path, mode: str, arms: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """One row per finished search."""
    rows = []
    for arm in arms:
        for seed in seeds:
            path = search(run_dir, mode, arm, seed).output
            if not path.exists():
                continue
            summary = json.loads(path.read_text())
            strategy = summary["strategy"]
            inc, spent = strategy["incumbent"], strategy["spent"]
            row = {"mode": mode, "arm": arm, "strategy": ARMS[mode][arm].strategy,
                   "fitness": ARMS[mode][arm].fitness, "seed": seed, "arch": inc.get("arch"),
                   "truth": inc.get("truth"), "space_rank": inc.get("space_rank"),
                   "evaluations": spent["evaluations"], "labels": spent.get("labels", 0),
                   "steps": spent["steps"],
                   "minutes": spent["seconds"] / 60,
                   "overhead_fraction": strategy["overhead_fraction"],
                   "best_evaluated": (summary.get("best_possible") or {}).get("top1"),
                   "fitness_spearman": fitness_spearman(summary, inc),
                   "trace": strategy["trace"]}
            for cost, front in (strategy.get("fronts") or {}).items():
                row[f"coverage_{cost}"] = front.get("coverage_of_evaluated")
                row[f"space_coverage_{cost}"] = front.get("coverage_of_space")
                row[f"coverage_from_worst_{cost}"] = front.get("coverage_of_evaluated_from_worst")
            rows.append(row)
    return rows


def fitness_spearman(summary: dict[str, Any], incumbent: dict[str, Any]) -> float | None:
    """The fitness's Spearman with the truth over the archs evaluated at the incumbent's
    (the highest) fidelity."""
    by_budget = summary["metrics"].get(incumbent.get("fitness"), {})
    return by_budget.get(str(incumbent.get("budget")), {}).get("spearman")


def mean_with_interval(values: list[float], digits: int = 2) -> str:
    """The mean of ``values`` and its bootstrap interval, ``digits`` decimals."""
    mean, low, high = mean_interval(values)
    return value_with_interval(mean, (low, high), digits)


def write_table(rows: list[dict[str, Any]], mode: str, out: Path, command: str) -> str:
    """``OUT/<mode>_table.md`` (and the per-run CSV); returns the table text."""
    columns = ["mode", "arm", "strategy", "fitness", "seed", "truth", "space_rank",
               "evaluations", "labels", "steps", "minutes", "overhead_fraction", "best_evaluated",
               "fitness_spearman", "coverage_params",
               "space_coverage_params", "coverage_from_worst_params", "arch"]
    atomic_write_csv(out / f"{mode}_runs.csv", rows, columns)
    lines = [f"# Strategies, {mode} mode", "", f"Command: `{command}`", "",
             "Incumbent after the whole budget: true CIFAR-10 test accuracy (NAS-Bench-201, 200 "
             "epochs) and rank among the 15,625 archs; means over seeds with bootstrap 95 % "
             "intervals. Over the archs a search evaluated at its highest fidelity (all of "
             "them, or halving's last rung): best evaluated, the true accuracy of the best "
             "(what a perfect fitness would have picked), and fitness ρ, the fitness's "
             "Spearman with the truth (how well it orders what the strategy found).", "",
             "| arm | fitness | seeds | true accuracy | rank in space | best evaluated | "
             "fitness ρ | evaluations | labels | steps | minutes | overhead | "
             "front coverage: evaluated / space (from worst) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm and r["truth"] is not None]
        if not mine:
            continue
        coverage = [r["coverage_params"] for r in mine if r.get("coverage_params") is not None]
        space = [r["space_coverage_params"] for r in mine
                 if r.get("space_coverage_params") is not None]
        worst = [r["coverage_from_worst_params"] for r in mine
                 if r.get("coverage_from_worst_params") is not None]
        cover = (f"{100 * np.mean(coverage):.1f} % / {100 * np.mean(space):.1f} % "
                 f"({100 * np.mean(worst):.1f} %)" if coverage and space and worst else "-")
        lines.append(
            f"| {arm} | {mine[0]['fitness']} | {len(mine)} | "
            f"{mean_with_interval([r['truth'] for r in mine])} | "
            f"{mean_with_interval([float(r['space_rank']) for r in mine], digits=0)} | "
            f"{mean_of(mine, 'best_evaluated', '.2f')} | "
            f"{mean_of(mine, 'fitness_spearman', '.2f')} | "
            f"{np.mean([r['evaluations'] for r in mine]):.0f} | "
            f"{np.mean([r['labels'] for r in mine]):.0f} | "
            f"{np.mean([r['steps'] for r in mine]):,.0f} | "
            f"{np.mean([r['minutes'] for r in mine]):.1f} | "
            f"{100 * np.median([r['overhead_fraction'] for r in mine]):.2f} % | {cover} |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / f"{mode}_table.md", text)
    return text


def mean_of(rows: list[dict[str, Any]], key: str, spec: str) -> str:
    """The mean of ``key`` over the rows that have it, formatted; "-" when none has."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return format(float(np.mean(values)), spec) if values else "-"


def plot_curves(rows: list[dict[str, Any]], mode: str, path: Path) -> None:
    """Mean incumbent true accuracy over seeds against spend (steps or evaluations; seconds)."""
    x_key = {"table": "evaluations", "guided": "labels", "guided_cpu": "labels"}.get(mode,
                                                                                  "steps")
    fig = new_figure(13, 4)
    axes = fig.subplots(1, 2)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    styles = dict(zip(arms, line_styles(len(arms))))
    for arm in arms:
        traces = [[t for t in r["trace"] if "truth" in t and x_key in t] for r in rows
                  if r["arm"] == arm]
        for ax, key in zip(axes, (x_key, "seconds")):
            if max(t[-1][key] for t in traces if t) == 0:
                continue  # a training-free arm spends no fine-tune steps: seconds only
            start = max(t[0][key] for t in traces if t)  # every seed has an incumbent
            grid = np.linspace(start, max(t[-1][key] for t in traces if t), 200)
            curves = [np.interp(grid, [t[key] for t in trace], [t["truth"] for t in trace],
                                left=np.nan) for trace in traces if trace]
            ax.plot(grid, np.nanmean(curves, axis=0), label=f"{arm} ({len(curves)} seeds)",
                    **styles[arm], markevery=25)
    for ax, key in zip(axes, (x_key, "seconds")):
        ax.axhline(94.37, color="0.5", linestyle=":", label="best in the space (94.37)")
        ax.set_xlabel({"evaluations": "evaluations (table queries)",
                       "labels": "labels (table queries of cifar10_valid_val)",
                       "steps": "fine-tune steps spent",
                       "seconds": "evaluation seconds (log scale)"}[key])
        ax.set_ylabel("mean incumbent true accuracy (%)")
        if key == "seconds":  # training-free and fine-tuning arms differ 10-100x in seconds
            ax.set_xscale("log")
        ax.set_ylim(bottom=max(85.0, ax.get_ylim()[0]))
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()  # every arm has seconds
    legend_outside(fig, handles=handles, labels=labels)
    fig.suptitle(f"search strategies, {mode} mode (NAS-Bench-201 CIFAR-10 test accuracy)")
    save_figure(fig, path)


def run_mode(runner: StageRunner, mode: str, run_dir: Path, arms: list[str], seeds: list[int],
             jobs: int, out: Path, command: str) -> None:
    """Every (arm, seed) search of ``mode`` not yet finished, then its table and plots."""
    runner.run([search(run_dir, mode, arm, seed) for arm in arms for seed in seeds], jobs)
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(run_dir, mode, arms, seeds)
    print(write_table(rows, mode, out, command))
    plot_curves(rows, mode, out / f"incumbent_{mode}.png")
    for arm in arms:
        front = run_dir / "search" / search_name(mode, arm, 0) / "front_params.png"
        if front.exists():
            shutil.copyfile(front, out / f"front_{mode}-{arm}.png")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", choices=sorted(ARMS), default=["table", "cpu"])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "quickstart",
                        help="the supernet's run dir (trained when missing)")
    parser.add_argument("--train-config", default="quickstart",
                        help="configs/<name>.yaml trains the supernet when the run dir has none")
    parser.add_argument("--table-seeds", type=positive_int, default=20, help="table mode: seeds 0..N-1")
    parser.add_argument("--cpu-seeds", type=positive_int, default=3, help="cpu mode: seeds 0..N-1")
    parser.add_argument("--guided-seeds", type=positive_int, default=10,
                        help="guided and guided_cpu modes: seeds 1..N (100-104 tuned them)")
    parser.add_argument("--arms", nargs="+", help="default: every arm of each mode")
    parser.add_argument("--jobs", type=positive_int, default=2, help="searches run side by side")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "strategies")
    args = parser.parse_args(argv)
    known = {arm for mode in args.modes for arm in ARMS[mode]}
    unknown = sorted(set(args.arms or ()) - known)
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {', '.join(sorted(known))}")
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO,
                         env={"OMP_NUM_THREADS": "1"})  # one thread per process
    runner.run([train_stage("supernet", args.run_dir,
                            REPO / "configs" / f"{args.train_config}.yaml",
                            log=args.run_dir.parent / f"{args.run_dir.name}-train.log")])
    command = shlex.join(["python", "experiments/strategies.py", *argv])
    for mode in args.modes:
        arms = [a for a in ARMS[mode] if not args.arms or a in args.arms]
        seeds = (list(range(1, args.guided_seeds + 1)) if mode.startswith("guided") else
                 list(range(args.table_seeds if mode == "table" else args.cpu_seeds)))
        run_mode(runner, mode, args.run_dir, arms, seeds, args.jobs, args.out, command)
    return 0


if __name__ == "__main__":
    run_cli(main)
