"""Reproduce the paper's one-shot table (Table 2) at CPU scale, resumably, in one command.

    python experiments/reproduce.py --out results/table2
        [--experiments randnas fairnas multipaths darts] [--work-dir runs/reproduce]
        [--candidate-seed 123] [--retrain randnas] [--search-set KEY=VALUE ...] [--processes 2]
    python experiments/reproduce.py --tuning-genotypes runs/darts_tune_genotypes_seed7.txt

Each experiment trains its CPU-scale supernet (``train.py --config configs/<train
config>.yaml``), searches its candidates (``search.py --config configs/<search config>.yaml``)
against the ground truth, and copies the search's summary into ``OUT/<experiment>/``: the three
NB201 samplers rank 200 uniform candidates against the NAS-Bench-201 table; ``darts`` ranks 500
NB301 genotypes (a seeded draw from the NASLib file) against their NB301 *surrogate* accuracy,
as the paper's DARTS row did. ``--retrain X`` also retrains experiment X's top-10 lists from
scratch (settings in its search config). ``OUT/table.md`` then gathers every finished
experiment: our Spearman/Kendall per estimator and B, top-10 true accuracy, the best possible
top-10, wall time per stage and the paper's numbers.

Every stage is a subprocess (:mod:`speedynas_core.stages`): its output goes to
``WORK_DIR/logs/``, its exact command to ``OUT/commands.jsonl``. Re-running skips finished
stages and resumes killed ones (training from its checkpoint, the search from its
results.jsonl); a finished search is not run again (remove its ``summary.json`` to rescore its
stored trajectories with another estimator list). ``--search-set`` overrides the search config
(e.g. ``"finetune.budgets=[100]"`` for another candidate draw at the paper's main budget only)
and is recorded in the table's command. With ``--processes 2`` every stage runs under
``torchrun --standalone --nproc_per_node=2``: training data parallel, the search sharded over
the processes (one per CPU core here).
"""
from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speedynas_core.atomic_io import atomic_write_json, atomic_write_text
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.stages import StageRunner, search_stage, train_stage
from speedynas_search.report import format_number, format_retrain, with_interval

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO.parent / "shared" / "benchmarks"
COPIED = ("summary.json", "summary.md", "scores.csv", "scores_vs_truth.png",
          "correlation_vs_budget.png")


@dataclass(frozen=True)
class Experiment:
    """One row group of the paper's Table 2 at CPU scale."""

    train_config: str                   # configs/<name>.yaml
    search_config: str                  # configs/<name>.yaml
    table: str                          # ground-truth file in ../shared/benchmarks
    column: str                         # its accuracy column
    paper: dict[str, float]             # Ru et al. 2021 Table 2: Spearman at B = 100
    paper_top10: dict[str, float] = field(default_factory=dict)
    genotypes: int = 0                  # > 0: candidates drawn from the table's archs


EXPERIMENTS = {
    "randnas": Experiment("nb201_cpu_randnas", "search_cpu", "nb201.json", "cifar10_test",
                          {"tse": 0.70, "valacc": 0.44, "sovl": 0.54, "tlmini": 0.62},
                          {"tse": 92.67, "valacc": 91.47}),
    "fairnas": Experiment("nb201_cpu_fairnas", "search_cpu", "nb201.json", "cifar10_test",
                          {"tse": 0.84, "valacc": 0.56, "sovl": 0.84, "tlmini": 0.72},
                          {"tse": 92.70, "valacc": 91.73}),
    "multipaths": Experiment("nb201_cpu_multipaths", "search_cpu", "nb201.json", "cifar10_test",
                             {"tse": 0.83, "valacc": 0.67, "sovl": 0.83, "tlmini": 0.74},
                             {"tse": 92.63, "valacc": 91.77}),
    "darts": Experiment("darts_cpu_randnas", "search_cpu_darts",
                        "darts_nb301_surrogate_naslib.json", "val_accuracy_nb301_surrogate",
                        {"tse": 0.30, "valacc": 0.11, "sovl": 0.10, "tlmini": 0.05},
                        {"tse": 93.64, "valacc": 93.20}, genotypes=500),
}


@dataclass(frozen=True)
class Context:
    """Where and how the experiments run (the parsed command line)."""

    out: Path
    work_dir: Path
    candidate_seed: int
    retrain: list[str]
    data_root: Path | None
    search_overrides: list[str]
    processes: int
    runner: StageRunner


def table_archs(experiment: Experiment) -> list[str]:
    """Every arch of ``experiment``'s ground-truth table, sorted."""
    return sorted(json.loads((TABLES / experiment.table).read_text())["archs"])


def draw_genotypes(experiment: Experiment, seed: int,
                   archs: list[str] | None = None) -> list[str]:
    """The seeded draw of ``experiment.genotypes`` archs from its table that it ranks
    (``archs``: the table's, when already read)."""
    return random.Random(seed).sample(archs or table_archs(experiment), experiment.genotypes)


def tuning_genotypes(experiment: Experiment, reported_seed: int, seed: int,
                     count: int) -> list[str]:
    """A seeded draw of ``count`` archs from the table's archs that the reported draw
    (``reported_seed``) leaves out: candidates to tune on without touching the reported ones."""
    archs = table_archs(experiment)
    rest = sorted(set(archs) - set(draw_genotypes(experiment, reported_seed, archs)))
    return random.Random(seed).sample(rest, count)


def write_genotype_file(archs: list[str], path: Path) -> None:
    """``archs``, one per line."""
    atomic_write_text(path, "".join(f"{arch}\n" for arch in archs))


def search_overrides(name: str, ctx: Context) -> list[str]:
    """The search.py overrides of experiment ``name`` (writes the genotype file it names)."""
    experiment, seed = EXPERIMENTS[name], ctx.candidate_seed
    overrides = ["ground_truth.source=table", f"ground_truth.path={TABLES / experiment.table}",
                 f"ground_truth.column={experiment.column}", "progress=false",
                 f"retrain.enabled={str(name in ctx.retrain).lower()}"]
    if experiment.genotypes:
        genotypes = ctx.work_dir / f"{experiment.train_config}_genotypes_seed{seed}.txt"
        write_genotype_file(draw_genotypes(experiment, seed), genotypes)
        overrides.append(f"candidates.file={genotypes}")
    else:
        overrides.append(f"candidates.seed={seed}")
    return overrides + ctx.search_overrides


def retrained(summary: Path) -> bool:
    """Whether the search of ``summary`` has finished with its top-k retrained."""
    return summary.exists() and "retrain" in json.loads(summary.read_text())


def experiment_table(experiment: Experiment, summary: dict[str, Any],
                     timing: dict[str, float]) -> str:
    """One experiment's rows: ours at every B (with intervals) next to the paper's B = 100."""
    budgets, last = summary["budgets"], str(summary["budgets"][-1])
    top = f"{summary.get('top_fraction', 0.1):.0%}"
    head = (["estimator"] + [f"Spearman B={b}" for b in budgets]
            + [f"Kendall B={b}" for b in budgets])
    head += [f"Kendall in true top {top} B={last}", f"precision at {top} B={last}",
             f"top-10 acc B={last}", "paper Spearman (B=100)", "paper top-10"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in summary["estimators"]:
        metrics = summary["metrics"][name]
        row = [name] + [with_interval(metrics[str(b)], "spearman", 2) for b in budgets]
        row += [with_interval(metrics[str(b)], "kendall", 2) for b in budgets]
        row += [format_number(metrics[last].get("kendall_top")),
                format_number(metrics[last].get("precision_top")),
                format_number(metrics[last]["top10"]), format_number(experiment.paper.get(name)),
                format_number(experiment.paper_top10.get(name))]
        lines.append("| " + " | ".join(row) + " |")
    zero_cost = summary.get("zero_cost_seconds_per_candidate") or {}
    lines += ["", f"Best possible top-10 among these candidates: "
                  f"{format_number(summary['best_possible']['top10'])}. Supernet training "
                  f"{timing['train'] / 60:.1f} min; search {timing['search'] / 60:.1f} min "
                  f"({summary['seconds_per_candidate']:.1f} s per candidate, one fine-tune of "
                  f"B={last} feeding every B" + (", zero-cost proxies " + ", ".join(
                      f"{name} {seconds:.2f} s" for name, seconds in zero_cost.items())
                      if zero_cost else "") + ")."]
    if "retrain" in summary:
        lines += ["", "### Top-10 retrained from scratch", "", format_retrain(summary["retrain"])]
    return "\n".join(lines)


def run_experiment(name: str, ctx: Context) -> None:
    """Train, search and copy one experiment's outputs into ``ctx.out / name``."""
    experiment = EXPERIMENTS[name]
    run_dir = ctx.work_dir / experiment.train_config
    search_name = f"seed{ctx.candidate_seed}"
    logs = ctx.work_dir / "logs"
    data = [f"data.root={ctx.data_root}"] if ctx.data_root else []
    train = train_stage(f"{name}/train", run_dir,
                        REPO / "configs" / f"{experiment.train_config}.yaml",
                        ["log.progress=false", *data],
                        log=logs / f"{experiment.train_config}-train.log",
                        processes=ctx.processes)
    search = search_stage(f"{name}/{search_name}", run_dir,
                          REPO / "configs" / f"{experiment.search_config}.yaml",
                          search_overrides(name, ctx), search_name=search_name,
                          log=logs / f"{experiment.train_config}-{search_name}.log",
                          processes=ctx.processes)
    if name in ctx.retrain:
        search = replace(search, finished=retrained)
    ctx.runner.run([train, search])
    summary = json.loads(search.output.read_text())
    history = json.loads((run_dir / "history.json").read_text())
    timing = {"train": sum(entry["seconds"] for entry in history),
              "search": summary["search_wall_seconds"]}
    out = ctx.out / name
    out.mkdir(parents=True, exist_ok=True)
    for file in COPIED:
        shutil.copyfile(search.output.parent / file, out / file)
    shutil.copyfile(run_dir / "history.json", out / "train_history.json")
    atomic_write_json(out / "timing.json", timing)
    print(experiment_table(experiment, summary, timing), flush=True)


def write_table(out: Path, candidate_seed: int, search_overrides: list[str]) -> None:
    """``OUT/table.md`` from every experiment finished so far in ``OUT`` (so runs of one
    experiment at a time add up)."""
    sections = []
    for name, experiment in EXPERIMENTS.items():
        if (out / name / "summary.json").exists():
            summary = json.loads((out / name / "summary.json").read_text())
            timing = json.loads((out / name / "timing.json").read_text())
            settings = summary["settings"]
            candidates = (f"{experiment.genotypes} genotypes drawn with seed {candidate_seed} "
                          f"from {experiment.table}" if experiment.genotypes
                          else f"{settings['candidates']} candidates")
            sections.append(f"## {name}: {settings['space']} supernet {settings['supernet']}, "
                            f"{settings['sampler']}, {settings['supernet_epochs']} epochs; "
                            f"{candidates}; truth: "
                            f"{settings['ground_truth'].replace(str(TABLES) + '/', '')}\n\n"
                            + experiment_table(experiment, summary, timing))
    command = (f"python experiments/reproduce.py --out {out} --experiments NAME "
               f"--candidate-seed {candidate_seed}")
    if search_overrides:
        command += " --search-set " + " ".join(map(shlex.quote, search_overrides))
    atomic_write_text(out / "table.md", "\n\n".join(
        ["# One-shot ranking at CPU scale vs Ru et al. 2021 (Table 2)",
         f"Produced by `{command}` for each experiment below (protocol and tuning history: "
         "NOTES.md). Spearman/Kendall of each estimator's score against the true accuracy; the "
         "paper's figures are B = 100 with C=16, N=5 supernets trained 100 epochs on a GPU. "
         "The DARTS truth is the NB301 surrogate's prediction, not a measured accuracy (the "
         "paper's DARTS row used the same surrogate)."] + sections) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "table2")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "reproduce")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=list(EXPERIMENTS))
    parser.add_argument("--candidate-seed", type=non_negative_int, default=123)
    parser.add_argument("--retrain", nargs="*", default=[], choices=list(EXPERIMENTS),
                        help="also retrain these experiments' top-10 lists from scratch")
    parser.add_argument("--data-root", type=Path, help="data folder (default: the configs')")
    parser.add_argument("--search-set", nargs="+", action="extend", default=[],
                        metavar="KEY=VALUE",
                        help="overrides of the search config (after the experiment's own)")
    parser.add_argument("--processes", type=positive_int, default=1,
                        help="processes per stage (more than 1: under torchrun)")
    parser.add_argument("--tuning-genotypes", type=Path, metavar="PATH",
                        help="only write the DARTS row's tuning genotypes to PATH: "
                             "--tuning-count archs (seed --tuning-seed) that the reported draw "
                             "of --candidate-seed leaves out")
    parser.add_argument("--tuning-seed", type=non_negative_int, default=7)
    parser.add_argument("--tuning-count", type=positive_int, default=100)
    args = parser.parse_args(argv)
    if args.tuning_genotypes:
        write_genotype_file(tuning_genotypes(EXPERIMENTS["darts"], args.candidate_seed,
                                             args.tuning_seed, args.tuning_count),
                            args.tuning_genotypes)
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO)
    ctx = Context(args.out, args.work_dir, args.candidate_seed, args.retrain, args.data_root,
                  args.search_set, args.processes, runner)
    for name in args.experiments:
        run_experiment(name, ctx)
    write_table(args.out, args.candidate_seed, args.search_set)
    return 0


if __name__ == "__main__":
    run_cli(main)
