"""Multi-objective search in table mode: CIFAR-10 accuracy against Pixel 3 latency (free), or
against the accuracy under PGD attack at eps 1/255 (paid with each label), at most 200 labels,
against the true front of all 15,625 NB201 cells, in one command.

    python experiments/multi_objective.py [--mode latency|robustness] [--run-dir runs/quickstart]
        [--train-config quickstart] [--tuning-seed 0] [--seeds 1 2 ... 9] [--labels 200]
        [--jobs 2] [--out results/multi_objective]

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

``--mode robustness`` (default ``--out results/multi_objective/robustness``): the second
objective is ``pgd@Linf_eps-1.0``, which is not free: guided search declares it paid
(``strategy.paid_objectives``), reads it with each label and predicts it for the other archs
with a second random forest on the same free features (``guided-paid``, its acquisition, mean,
ucb or thompson, chosen on the tuning seed); against random sampling of as many labels (each
sampled arch's accuracy and robustness known) and, as a diagnostic, the same guided search with
the robustness free (``guided-free``: looked up for every evaluated arch). The paired difference
guided-paid minus sampling (and minus guided-free) comes with a bootstrap interval over the
seeds. The robustness predictor, fitted as in the search on its first 100 labels (and, as a
control, on the random sample's first 100 cells), is scored by Spearman on a uniform draw of
1,000 other cells and on the search's other evaluated archs.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import search_spaces
from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.stages import Stage, StageRunner, search_stage, train_stage
from speedynas_predictors import create_predictor
from speedynas_search.analysis import spearman
from speedynas_search.labels import stored_labels
from speedynas_search.metrics import mean_interval
from speedynas_search.pareto import pareto_front
from speedynas_search.report import value_with_interval
from speedynas_search.results_store import ResultsStore
from speedynas_search.signals import search_signals, signals_of
from speedynas_search.strategies import Fidelity
from speedynas_search.strategy_report import front_summary, plot_front, space_coverage
from supernet.measure import arch_parameters

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "search_strategies_table.yaml"
GUIDED = REPO / "configs" / "search_strategies_guided.yaml"
OBJECTIVE = "pixel3_latency_cifar10"
ROBUSTNESS = "pgd@Linf_eps-1.0"
SPACE = search_spaces.create("nb201")
TRUTH = search_spaces.create_ground_truth("nb201", space=SPACE, column="cifar10_test")
#: Evolution settings tried on the tuning seed: (population, tournament, children).
GRID = [(p, t, c) for p in (20, 50) for t in (2, 5) for c in (5, 10)]
#: Columns of runs.csv and tuning.csv.
COLUMNS = ("arm", "seed", "labels", "front_size", "hypervolume_fraction",
           "hypervolume_fraction_from_worst", "coverage_of_evaluated", "space_front_found",
           "space_front_within_epsilon", "space_front_evaluated", "incumbent_truth")
#: The robustness mode's runs.csv also scores the robustness predictor of a paid search.
ROBUSTNESS_COLUMNS = (*COLUMNS, "spearman_uniform", "spearman_open")
#: Features of the guided searches (free): the cell's graph features and size.
SIGNALS = ("graph", "size")
#: Labels the robustness predictor is scored from, and the uniform draw it is scored on.
PREDICTOR_LABELS, HELD_OUT, HELD_OUT_SEED = 100, 1000, 2026


class Mode(NamedTuple):
    """The second objective of an experiment and how its table describes it."""

    objective: str
    title: str
    worst: str  # the objective's worst end, as the table's caption names it


LATENCY_MODE = Mode(OBJECTIVE, OBJECTIVE, "largest latency")
ROBUSTNESS_MODE = Mode(ROBUSTNESS, f"{ROBUSTNESS} (PGD at eps 1/255, paid with each label)",
                       "lowest PGD accuracy")


def evolution(population: int = 20, tournament: int = 5, children: int = 10) -> list[str]:
    """Overrides of NSGA-II evolution over (fitness, latency) with these settings."""
    return ["strategy.name=evolution", f"strategy.objectives=[{OBJECTIVE}]",
            f"strategy.population={population}", f"strategy.tournament={tournament}",
            f"strategy.children={children}"]


def guided(acquisition: str, labels: int, objective: str = OBJECTIVE,
           paid: bool = False) -> list[str]:
    """Overrides of guided search spending ``labels`` labels, free features, the objective
    (``paid``: read with each label and predicted for the other archs)."""
    key = "paid_objectives" if paid else "objectives"
    return ["estimators.names=[params]", f"strategy.signals=[{', '.join(SIGNALS)}]",
            f"strategy.labels={labels}", "strategy.batch=5", f"strategy.{key}=[{objective}]",
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


def measure(stage: Stage, arm: str, seed: int,
            objective: str = OBJECTIVE) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of a finished search and its front (as the strategy report measures one; a
    guided search's among its labelled archs, by their labels and by the values of an
    objective it paid for with them)."""
    summary = json.loads(stage.output.read_text())
    records = list(ResultsStore(stage.output.parent).load().values())
    fidelity = Fidelity(**summary["strategy"]["fidelities"][-1])
    truths = dict(zip((r.arch for r in records), TRUTH.lookup_many(r.arch for r in records)))
    labelled = stage.output.parent / "labels.jsonl"
    labels, paid = stored_labels(labelled) if labelled.exists() else (None, {})
    front = front_summary(records, truths, fidelity, objective, TRUTH, SPACE, labels,
                          paid.get(objective))
    row = {"arm": arm, "seed": seed,  # without labels.jsonl (table mode) an evaluation is one
           "labels": summary["strategy"]["spent"]["labels"] if labels else len(records),
           "front_size": len(front["found"]),
           "incumbent_truth": summary["strategy"]["incumbent"].get("truth"),
           **{k: front[k] for k in COLUMNS if k in front}}
    return row, front


def ceiling(objective: str = OBJECTIVE) -> dict[str, Any]:
    """Every cell labelled: the valid-accuracy front of the whole space, measured as a search's
    front is (:func:`~speedynas_search.strategy_report.space_coverage`)."""
    archs = list(SPACE.enumerate())
    valid = search_spaces.create_ground_truth("nb201", space=SPACE, column="cifar10_valid_val")
    table = search_spaces.table_objective(SPACE, objective)
    sign = -1.0 if table.maximise else 1.0
    costs = [sign * v for v in table.lookup_many(archs)]
    true = TRUTH.lookup_many(archs)
    found = pareto_front(valid.lookup_many(archs), costs)
    coverage = space_coverage(([true[i] for i in found], [costs[i] for i in found]),
                              (true, costs), (true, costs), sign, objective)
    return {"arm": "ceiling: all 15,625 cells labelled", "seed": None, "labels": len(archs),
            "front_size": len(found), **coverage}


def robustness_predictor(search_dir: Path, seed: int) -> dict[str, float]:
    """Spearman of the robustness predictor as a paid search fits it (a random forest on the
    free features, seed ``seed``) from its first :data:`PREDICTOR_LABELS` labels (a table-mode
    search's: its first evaluations), with the values paid with them (the table's): on a
    uniform draw of :data:`HELD_OUT` other cells, and on the other archs the search
    evaluated."""
    evaluated = search_signals(search_dir, SPACE, SIGNALS)
    labelled = search_dir / "labels.jsonl"
    if labelled.exists():
        labels, paid = stored_labels(labelled)
        fitted = list(labels)[:PREDICTOR_LABELS]
        values = [paid[ROBUSTNESS][a] for a in fitted]
    else:
        fitted = evaluated.archs[:PREDICTOR_LABELS]
        values = search_spaces.table_objective(SPACE, ROBUSTNESS).lookup_many(fitted)
    rows = dict(zip(evaluated.archs, evaluated.matrix(SIGNALS)))
    model = create_predictor("rf", seed=seed)
    model.fit(np.array([rows[a] for a in fitted]), values)
    archs = [str(a) for a in SPACE.enumerate()]
    draw = np.random.default_rng(HELD_OUT_SEED).permutation(len(archs))
    uniform = [archs[i] for i in draw[:HELD_OUT + PREDICTOR_LABELS]
               if archs[i] not in fitted][:HELD_OUT]
    cells = signals_of([{"arch": a, "params": arch_parameters(SPACE.parse(a)), "flops": None}
                        for a in uniform], SPACE, SIGNALS)
    robustness = search_spaces.table_objective(SPACE, ROBUSTNESS)
    open_archs = [a for a in evaluated.archs if a not in fitted]
    out = {}
    for name, held_out, x in (("spearman_uniform", uniform, cells.matrix(SIGNALS)),
                              ("spearman_open", open_archs,
                               np.array([rows[a] for a in open_archs]))):
        out[name] = spearman(model.predict(x)[0].tolist(), robustness.lookup_many(held_out))
    return out


def cell(rows: list[dict[str, Any]], key: str) -> str:
    """Mean of ``key`` over ``rows`` in %, with its bootstrap 95 % interval over the seeds."""
    values = [100 * r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "-"
    mean, low, high = mean_interval(values)
    return value_with_interval(mean, (low, high) if len(values) > 1 else None, 2)


def write_table(rows: list[dict[str, Any]], path: Path, command: str, seeds: list[int],
                tuned: str, mode: Mode = LATENCY_MODE, notes: tuple[str, ...] = ()) -> str:
    """``table.md``: one line per arm, means over ``seeds``; then ``notes``."""
    keys = ("hypervolume_fraction", "hypervolume_fraction_from_worst", "space_front_found",
            "space_front_within_epsilon", "space_front_evaluated")
    lines = [f"# Accuracy against {mode.title}, table mode", "", f"Command: `{command}`", "",
             f"Seeds {', '.join(map(str, seeds))}; {tuned} chosen on the tuning seed. "
             "Hypervolume of the found front (its archs at their true CIFAR-10 test accuracy) "
             "as a % of the true front's over all 15,625 cells, from the space's reference "
             f"point (median true accuracy, {mode.worst}) and from (lowest accuracy, "
             f"{mode.worst}); the true front's points above the median reached exactly, "
             "within 5 % of their span, and among the evaluated archs; means over the seeds "
             "with bootstrap 95 % intervals.", "",
             "| arm | seeds | labels | hypervolume % (median ref.) | hypervolume % (worst ref.) "
             "| front points found % | within 5 % | evaluated % |",
             "|---|---|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        lines.append(f"| {arm} | {len([r for r in mine if r['seed'] is not None]) or '-'} | "
                     f"{mine[0]['labels']} | " + " | ".join(cell(mine, k) for k in keys) + " |")
    text = "\n".join([*lines, *(f"\n{note}" for note in notes)]) + "\n"
    atomic_write_text(path, text)
    return text


def paired(rows: list[dict[str, Any]], arm: str, baseline: str, key: str) -> str:
    """Mean over the seeds of ``arm`` minus ``baseline`` in ``key`` (percentage points), with
    its bootstrap 95 % interval."""
    base = {r["seed"]: r[key] for r in rows if r["arm"] == baseline}
    differences = [100 * (r[key] - base[r["seed"]]) for r in rows
                   if r["arm"] == arm and r["seed"] in base]
    mean, low, high = mean_interval(differences)
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def latency_arms(args: argparse.Namespace, runner: StageRunner,
                 out: Path) -> tuple[dict[str, list[str]], str]:
    """Tune evolution's settings and guided search's acquisition on the tuning seed
    (``OUT/tuning.csv``); the reported arms and which evolution settings were chosen."""
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
    atomic_write_csv(out / "tuning.csv", tried + tried_guided, COLUMNS)
    guided_tuned = max(tried_guided, key=lambda r: r["hypervolume_fraction"])["arm"]
    return {"evolution (default)": evolution(), f"{tuned} (tuned)": grid[tuned],
            f"{guided_tuned} (tuned)": guided_tuning[guided_tuned],
            "sample": ["strategy.name=sample"],
            "evolution-test-labels (diagnostic)": [*evolution(),
                                                   "estimators.table.column=cifar10_test"]}, tuned


def robustness_arms(args: argparse.Namespace, runner: StageRunner,
                    out: Path) -> tuple[dict[str, list[str]], str]:
    """Tune the paid guided search's acquisition on the tuning seed (``OUT/tuning.csv``); the
    reported arms and the chosen acquisition."""
    tuning = {f"guided-paid-{a}": guided(a, args.labels, ROBUSTNESS, paid=True)
              for a in ("mean", "ucb", "thompson")}
    stages = [search(args.run_dir, arm, overrides, args.tuning_seed, args.labels)
              for arm, overrides in tuning.items()]
    runner.run(stages, args.jobs)
    tried = [measure(stage, arm, args.tuning_seed, ROBUSTNESS)[0]
             for stage, arm in zip(stages, tuning)]
    atomic_write_csv(out / "tuning.csv", tried, COLUMNS)
    tuned = max(tried, key=lambda r: r["hypervolume_fraction"])["arm"]
    acquisition = tuned.rsplit("-", 1)[1]
    return {f"{tuned} (tuned)": tuning[tuned], "sample": ["strategy.name=sample"],
            f"guided-free-{acquisition} (diagnostic)": guided(acquisition, args.labels,
                                                              ROBUSTNESS)}, tuned


def robustness_notes(rows: list[dict[str, Any]], tuned: str) -> tuple[str, ...]:
    """The paid search against sampling, paired by seed, and the robustness predictor fitted
    on the first 100 labels of each."""
    arm = f"{tuned} (tuned)"
    differences = ", ".join(f"{label} {paired(rows, arm, 'sample', key)}" for label, key in (
        ("hypervolume (median ref.)", "hypervolume_fraction"),
        ("hypervolume (worst ref.)", "hypervolume_fraction_from_worst"),
        ("front points within 5 %", "space_front_within_epsilon")))

    def spearman_of(name: str, key: str) -> str:
        mean, low, high = mean_interval([r[key] for r in rows if r["arm"] == name])
        return value_with_interval(mean, (low, high), 3)

    predictors = "; ".join(
        f"{name}'s first {PREDICTOR_LABELS} labels {spearman_of(name, 'spearman_uniform')} on "
        f"a uniform draw of {HELD_OUT:,} other cells, {spearman_of(name, 'spearman_open')} on "
        "its other evaluated archs" for name in (arm, "sample"))
    free = next(r["arm"] for r in rows if r["arm"].startswith("guided-free"))
    against_free = ", ".join(f"{label} {paired(rows, arm, free, key)}" for label, key in (
        ("hypervolume (median ref.)", "hypervolume_fraction"),
        ("hypervolume (worst ref.)", "hypervolume_fraction_from_worst")))
    return (f"Paired {tuned} minus sample, percentage points: {differences}.",
            f"Paired {tuned} minus {free}, percentage points: {against_free}.",
            "Robustness predictor (random forest on graph features and size, as in the search) "
            f"fitted on {predictors}.")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("latency", "robustness"), default="latency",
                        help="the second objective: Pixel 3 latency (free) or PGD robustness "
                             "(paid with each label)")
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "quickstart",
                        help="an NB201 run dir (trained when missing; its weights are unused)")
    parser.add_argument("--train-config", default="quickstart",
                        help="configs/<name>.yaml trains the run dir when it has no run")
    parser.add_argument("--tuning-seed", type=non_negative_int, default=0)
    parser.add_argument("--seeds", type=positive_int, nargs="+", default=list(range(1, 10)),
                        help="the reported seeds")
    parser.add_argument("--labels", type=positive_int, default=200, help="table queries per search")
    parser.add_argument("--jobs", type=positive_int, default=2, help="searches run side by side")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/multi_objective (latency) or "
                             "results/multi_objective/robustness")
    args = parser.parse_args(argv)
    if args.tuning_seed in args.seeds:
        parser.error(f"--tuning-seed {args.tuning_seed} is also a reported seed")
    robust = args.mode == "robustness"
    mode = ROBUSTNESS_MODE if robust else LATENCY_MODE
    out = args.out or REPO / "results" / "multi_objective" / ("robustness" if robust else "")
    runner = StageRunner(out / "commands.jsonl", cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    runner.run([train_stage("supernet", args.run_dir,
                            REPO / "configs" / f"{args.train_config}.yaml",
                            log=args.run_dir.parent / f"{args.run_dir.name}-train.log")])
    command = shlex.join(["python", "experiments/multi_objective.py", *argv])

    arms, tuned = (robustness_arms if robust else latency_arms)(args, runner, out)
    stages = {(arm, seed): search(args.run_dir, arm.split(" ")[0], overrides, seed, args.labels)
              for arm, overrides in arms.items() for seed in args.seeds}
    runner.run(list(stages.values()), args.jobs)
    rows = []
    for (arm, seed), stage in stages.items():
        row, front = measure(stage, arm, seed, mode.objective)
        if robust and not arm.startswith("guided-free"):
            row.update(robustness_predictor(stage.output.parent, seed))
        rows.append(row)
        if seed == args.seeds[0]:
            plot_front(front, mode.objective, f"{arm}, seed {seed}, {args.labels} labels",
                       out / f"front_{arm.split(' ')[0]}.png")
    atomic_write_csv(out / "runs.csv", rows, ROBUSTNESS_COLUMNS if robust else COLUMNS)
    notes = robustness_notes(rows, tuned) if robust else ()
    print(write_table([*rows, ceiling(mode.objective)], out / "table.md", command, args.seeds,
                      tuned, mode, notes))
    return 0


if __name__ == "__main__":
    run_cli(main)
