"""Multi-objective search in table mode: CIFAR-10 accuracy against Pixel 3 latency, at most 200
labels, against the true front of all 15,625 NB201 cells, in one command.

    python experiments/multi_objective.py [--run-dir runs/quickstart] [--train-config quickstart]
        [--tuning-seed 0] [--seeds 1 2 ... 9] [--labels 200] [--jobs 2]
        [--out results/multi_objective]

Every search is ``search.py --config configs/search_strategies_table.yaml`` (fitness: the
shipped table's ``cifar10_valid_val``, one label per evaluation; ``limit.evaluations`` =
``--labels``) into ``RUN_DIR/search/mo-<arm>-s<seed>``, run as a resumable stage
(:mod:`speedynas_core.stages`, one thread each, ``--jobs`` side by side; commands in
``OUT/commands.jsonl``). Table mode reads no supernet weights; the run dir only has to be an
NB201 one (trained first when missing, as in ``experiments/strategies.py``).

Arms: evolution with NSGA-II selection over (fitness, ``pixel3_latency_cifar10``, a free
lookup) at its default settings, and at the settings of a small grid that did best on the
tuning seed; predictor-guided search (``guided``, ``configs/search_strategies_guided.yaml``:
a random forest on the free graph features and size predicts the label, and each label goes
to the arch adding most hypervolume; its acquisition, mean or ucb, chosen on the tuning seed)
spending as many labels; random sampling of as many labels (``sample``); and, as a diagnostic,
the default evolution labelled by the test accuracy itself (``evolution-test-labels``: no
valid/test mismatch). Each search's front is measured the same way, with
:func:`speedynas_search.strategy_report.front_summary` (the found front in (fitness, latency)
placed at the true ``cifar10_test`` accuracies): hypervolume as a fraction of the whole space's
true front from the space's reference point, and the share of that front's points reached.
Writes ``OUT/runs.csv`` (one row per search), ``OUT/table.md`` (means over the reported seeds
with bootstrap 95 % intervals), ``OUT/tuning.csv`` and ``OUT/front_<arm>.png`` (first reported
seed).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
from pathlib import Path
from typing import Any

import search_spaces
from speedynas_core.atomic_io import atomic_write_text, read_jsonl
from speedynas_core.cli import run_cli
from speedynas_core.stages import Stage, StageRunner, search_stage, train_stage
from speedynas_search.metrics import mean_interval
from speedynas_search.pareto import pareto_front
from speedynas_search.report import value_with_interval
from speedynas_search.results_store import ResultsStore
from speedynas_search.strategies import Fidelity
from speedynas_search.strategy_report import front_summary, plot_front, space_coverage

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "search_strategies_table.yaml"
GUIDED = REPO / "configs" / "search_strategies_guided.yaml"
OBJECTIVE = "pixel3_latency_cifar10"
SPACE = search_spaces.create("nb201")
TRUTH = search_spaces.create_ground_truth("nb201", space=SPACE, column="cifar10_test")
#: Evolution settings tried on the tuning seed: (population, tournament, children).
GRID = [(p, t, c) for p in (20, 50) for t in (2, 5) for c in (5, 10)]
#: Columns of runs.csv and tuning.csv.
COLUMNS = ("arm", "seed", "labels", "front_size", "hypervolume_fraction",
           "hypervolume_fraction_from_worst", "coverage_of_evaluated", "space_front_found",
           "space_front_within_epsilon", "space_front_evaluated", "incumbent_truth")


def evolution(population: int = 20, tournament: int = 5, children: int = 10) -> list[str]:
    """Overrides of NSGA-II evolution over (fitness, latency) with these settings."""
    return ["strategy.name=evolution", f"strategy.objectives=[{OBJECTIVE}]",
            f"strategy.population={population}", f"strategy.tournament={tournament}",
            f"strategy.children={children}"]


def guided(acquisition: str, labels: int) -> list[str]:
    """Overrides of guided search spending ``labels`` labels, free features, the objective."""
    return ["estimators.names=[params]", "strategy.signals=[graph, size]",
            f"strategy.labels={labels}", "strategy.batch=5", f"strategy.objectives=[{OBJECTIVE}]",
            f"strategy.acquisition={acquisition}"]


def grid_arm(population: int, tournament: int, children: int) -> str:
    return f"evolution-p{population}-t{tournament}-c{children}"


def search(run_dir: Path, arm: str, overrides: list[str], seed: int, labels: int) -> Stage:
    """The stage of one (arm, seed) search: ``labels`` table queries, seed ``seed``."""
    name = f"mo-{arm}-l{labels}-s{seed}"
    is_guided = arm.startswith("guided")
    seeded = ([f"strategy.seed={seed}"] if is_guided or "strategy.name=evolution" in overrides
              else [])
    limit = [] if is_guided else [f"limit.evaluations={labels}"]  # guided: its label budget
    return search_stage(name, run_dir, GUIDED if is_guided else CONFIG, [
        "progress=false", "threads=1", f"candidates.seed={seed}", *limit, *overrides, *seeded],
        search_name=name, log=run_dir / "search" / "logs" / f"{name}.log")


def measure(stage: Stage, arm: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of a finished search and its front (as the strategy report measures one; a
    guided search's among its labelled archs, by their labels)."""
    summary = json.loads(stage.output.read_text())
    records = list(ResultsStore(stage.output.parent).load().values())
    fidelity = Fidelity(**summary["strategy"]["fidelities"][-1])
    truths = dict(zip((r.arch for r in records), TRUTH.lookup_many(r.arch for r in records)))
    labelled = stage.output.parent / "labels.jsonl"
    labels = ({line["arch"]: line["label"] for line in read_jsonl(labelled)}
              if labelled.exists() else None)
    front = front_summary(records, truths, fidelity, OBJECTIVE, TRUTH, SPACE, labels)
    row = {"arm": arm, "seed": seed,
           "labels": summary["strategy"]["spent"].get("labels", len(records)),
           "front_size": len(front["found"]),
           "incumbent_truth": summary["strategy"]["incumbent"].get("truth"),
           **{k: front[k] for k in COLUMNS if k in front}}
    return row, front


def ceiling() -> dict[str, Any]:
    """Every cell labelled: the valid-accuracy front of the whole space, measured as a search's
    front is (:func:`~speedynas_search.strategy_report.space_coverage`)."""
    archs = list(SPACE.enumerate())
    valid = search_spaces.create_ground_truth("nb201", space=SPACE, column="cifar10_valid_val")
    latency = search_spaces.table_objective(SPACE, OBJECTIVE).lookup_many(archs)
    true = TRUTH.lookup_many(archs)
    found = pareto_front(valid.lookup_many(archs), latency)
    coverage = space_coverage(([true[i] for i in found], [latency[i] for i in found]),
                              (true, latency), (true, latency), 1.0, OBJECTIVE)
    return {"arm": "ceiling: all 15,625 cells labelled", "seed": None, "labels": len(archs),
            "front_size": len(found), **coverage}


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def cell(rows: list[dict[str, Any]], key: str) -> str:
    """Mean of ``key`` over ``rows`` in %, with its bootstrap 95 % interval over the seeds."""
    values = [100 * r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "-"
    mean, low, high = mean_interval(values)
    return value_with_interval(mean, (low, high) if len(values) > 1 else None, 2)


def write_table(rows: list[dict[str, Any]], path: Path, command: str, seeds: list[int],
                tuned: str) -> str:
    """``table.md``: one line per arm, means over ``seeds``."""
    keys = ("hypervolume_fraction", "hypervolume_fraction_from_worst", "space_front_found",
            "space_front_within_epsilon", "space_front_evaluated")
    lines = [f"# Accuracy against {OBJECTIVE}, table mode", "", f"Command: `{command}`", "",
             f"Seeds {', '.join(map(str, seeds))}; {tuned} chosen on the tuning seed. "
             "Hypervolume of the found front (its archs at their true CIFAR-10 test accuracy) "
             "as a % of the true front's over all 15,625 cells, from the space's reference "
             "point (median true accuracy, largest latency) and from (lowest accuracy, largest "
             "latency); the true front's points above the median reached exactly, within 5 % "
             "of their span, and among the evaluated archs; means over the seeds with "
             "bootstrap 95 % intervals.", "",
             "| arm | seeds | labels | hypervolume % (median ref.) | hypervolume % (worst ref.) "
             "| front points found % | within 5 % | evaluated % |",
             "|---|---|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        lines.append(f"| {arm} | {len([r for r in mine if r['seed'] is not None]) or '-'} | "
                     f"{mine[0]['labels']} | " + " | ".join(cell(mine, k) for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(path, text)
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "quickstart",
                        help="an NB201 run dir (trained when missing; its weights are unused)")
    parser.add_argument("--train-config", default="quickstart",
                        help="configs/<name>.yaml trains the run dir when it has no run")
    parser.add_argument("--tuning-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 10)),
                        help="the reported seeds")
    parser.add_argument("--labels", type=int, default=200, help="table queries per search")
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "multi_objective")
    args = parser.parse_args(argv)
    if args.tuning_seed in args.seeds:
        parser.error(f"--tuning-seed {args.tuning_seed} is also a reported seed")
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    runner.run([train_stage("supernet", args.run_dir,
                            REPO / "configs" / f"{args.train_config}.yaml",
                            log=args.run_dir.parent / f"{args.run_dir.name}-train.log")])
    command = shlex.join(["python", "experiments/multi_objective.py", *argv])

    grid = {grid_arm(*settings): evolution(*settings) for settings in GRID}
    tuning = [search(args.run_dir, arm, overrides, args.tuning_seed, args.labels)
              for arm, overrides in grid.items()]
    runner.run(tuning, args.jobs)
    tried = [measure(stage, arm, args.tuning_seed)[0] for stage, arm in zip(tuning, grid)]
    tuned = max(tried, key=lambda r: r["hypervolume_fraction"])["arm"]
    guided_tuning = {f"guided-{a}": guided(a, args.labels) for a in ("mean", "ucb")}
    stages = [search(args.run_dir, arm, overrides, args.tuning_seed, args.labels)
              for arm, overrides in guided_tuning.items()]
    runner.run(stages, args.jobs)
    tried_guided = [measure(stage, arm, args.tuning_seed)[0]
                    for stage, arm in zip(stages, guided_tuning)]
    write_csv(tried + tried_guided, args.out / "tuning.csv")
    guided_tuned = max(tried_guided, key=lambda r: r["hypervolume_fraction"])["arm"]

    arms = {"evolution (default)": evolution(), f"{tuned} (tuned)": grid[tuned],
            f"{guided_tuned} (tuned)": guided_tuning[guided_tuned],
            "sample": ["strategy.name=sample"],
            "evolution-test-labels (diagnostic)": [*evolution(),
                                                   "estimators.table.column=cifar10_test"]}
    stages = {(arm, seed): search(args.run_dir, arm.split(" ")[0], overrides, seed, args.labels)
              for arm, overrides in arms.items() for seed in args.seeds}
    runner.run(list(stages.values()), args.jobs)
    rows = []
    for (arm, seed), stage in stages.items():
        row, front = measure(stage, arm, seed)
        rows.append(row)
        if seed == args.seeds[0]:
            plot_front(front, OBJECTIVE, f"{arm}, seed {seed}, {args.labels} labels",
                       args.out / f"front_{arm.split(' ')[0]}.png")
    write_csv(rows, args.out / "runs.csv")
    print(write_table([*rows, ceiling()], args.out / "table.md", command, args.seeds, tuned))
    return 0


if __name__ == "__main__":
    run_cli(main)
