"""Learning-curve extrapolation (strategy ``lce``) against the strategy it wraps and against
halving, at equal fine-tune steps, on the quick-start supernet, resumably.

    python experiments/lce.py [--run-dir runs/quickstart] [--inner sample evolution]
        [--seeds 3] [--few-steps 20] [--few-evaluations 200] [--top-n 10] [--max-steps 100]
        [--jobs 2] [--out results/lce]

Every search of a seed s (candidate draw s; evolution's seed s) spends the same fine-tune steps,
S = few_evaluations x few_steps + top_n x max_steps (``limit.steps``), and its incumbent is the
best TSE at B = max_steps among its archs fine-tuned max_steps; the arms, per inner strategy X:

- ``X``: X alone, every evaluation fine-tuned max_steps (S / max_steps of them);
- ``X+lce``: X's first few_evaluations evaluations fine-tuned few_steps and ranked by ``lce``
  (the ensemble's loss extrapolated to max_steps), its top_n then fine-tuned max_steps;
- ``X+tse``: the same framework ranked by the TSE observed at few_steps (no extrapolation):
  what the extrapolation itself adds is ``X+lce`` minus ``X+tse``;
- ``halving`` (once per seed): the first few_evaluations archs of the draw at few_steps ranked
  by their observed TSE, the top_n at max_steps -- ``sample+lce`` with no extrapolation.

The searches run with ``search.py --config configs/search_strategies_cpu.yaml`` (TSE, ``lce``,
TLmini and params as estimators, NB201 CIFAR-10 test accuracy as ground truth, one thread each,
``--jobs`` side by side) into ``RUN_DIR/search/lce-<arm>-<sizes>-s<seed>``; a finished search is
skipped, a killed one resumes (:mod:`speedynas_core.stages`; commands in
``OUT/commands.jsonl``). ``OUT/runs.csv`` has one row per search and ``OUT/table.md`` the mean
incumbent accuracy and rank over seeds with bootstrap 95 % intervals.

``OUT/prefix.md`` measures the extrapolation itself, free of search: over each ``sample`` arm's
archs (fine-tuned max_steps; with a constant learning rate and fixed batches their first
few_steps losses are those of a few_steps fine-tune), the Spearman with TSE at max_steps and
with the true accuracy of scores read at B = few_steps: TSE, TLmini, ``lce`` and
``lce_learned`` (fitted on top_n of them, a seeded choice, and scored on the others).
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import search_spaces
from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text, read_jsonl
from speedynas_core.cli import positive_int, run_cli
from speedynas_core.stages import Stage, StageRunner, search_stage, train_stage
from estimators import Candidate, Trajectory, create_estimator
from search_spaces import create_ground_truth
from speedynas_search import rank_metrics
from speedynas_search.metrics import mean_interval
from speedynas_search.report import value_with_interval

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "search_strategies_cpu.yaml"
PREFIX_ESTIMATORS = ("tse", "tlmini", "lce", "lce_learned")


class Sizes(NamedTuple):
    """The fine-tune steps of an experiment: few_evaluations archs at few_steps, top_n at
    max_steps."""

    few_steps: int
    few_evaluations: int
    top_n: int
    max_steps: int

    @property
    def steps(self) -> int:
        """S: what every search spends."""
        return self.few_evaluations * self.few_steps + self.top_n * self.max_steps

    def tag(self) -> str:
        return f"{self.few_evaluations}x{self.few_steps}-{self.top_n}x{self.max_steps}"


def arms(inner: list[str]) -> list[str]:
    """Arm names: each inner strategy alone, with lce, and with the same framework ranking by
    the observed TSE at few_steps (``X+tse``: no extrapolation), then halving."""
    return [name for x in inner for name in (x, f"{x}+lce", f"{x}+tse")] + ["halving"]


def overrides(arm: str, sizes: Sizes, seed: int) -> list[str]:
    """The search overrides of ``arm`` at ``sizes`` for ``seed``."""
    common = ["progress=false", "threads=1", "count_flops=false", f"candidates.seed={seed}",
              f"candidates.num={max(1000, sizes.few_evaluations)}",
              f"finetune.budgets=[{sizes.max_steps}]", "estimators.names=[tse,lce,tlmini,params]",
              f"estimators.lce.target={sizes.max_steps}", "strategy.fitness=tse",
              f"limit.steps={sizes.steps}"]
    if arm == "halving":
        return [*common, "strategy.name=halving",
                f"strategy.sizes=[{sizes.few_evaluations},{sizes.top_n}]",
                f"strategy.rung_steps=[{sizes.few_steps},{sizes.max_steps}]"]
    inner, _, few_fitness = arm.partition("+")
    seeded = [f"seed={seed}"] if inner == "evolution" else []
    if not few_fitness:
        return [*common, f"strategy.name={inner}", *(f"strategy.{o}" for o in seeded)]
    return [*common, "strategy.name=lce", f"strategy.inner.name={inner}",
            *(f"strategy.inner.{o}" for o in seeded), f"strategy.few_steps={sizes.few_steps}",
            f"strategy.few_fitness={few_fitness}",
            f"strategy.few_evaluations={sizes.few_evaluations}",
            f"strategy.top_n={sizes.top_n}"]


def search(run_dir: Path, arm: str, sizes: Sizes, seed: int) -> Stage:
    """The stage of one (arm, seed) search."""
    name = f"lce-{arm.replace('+', '_')}-{sizes.tag()}-s{seed}"
    return search_stage(name, run_dir, CONFIG, overrides(arm, sizes, seed), search_name=name,
                        log=run_dir / "search" / "logs" / f"{name}.log")


def collect(run_dir: Path, names: list[str], sizes: Sizes, seeds: list[int]
            ) -> list[dict[str, Any]]:
    """One row per finished search."""
    rows = []
    for arm in names:
        for seed in seeds:
            path = search(run_dir, arm, sizes, seed).output
            if not path.exists():
                continue
            strategy = json.loads(path.read_text())["strategy"]
            incumbent, spent = strategy["incumbent"], strategy["spent"]
            rows.append({"arm": arm, "seed": seed, "truth": incumbent.get("truth"),
                         "space_rank": incumbent.get("space_rank"),
                         "evaluations": spent["evaluations"], "steps": spent["steps"],
                         "minutes": spent["seconds"] / 60, "arch": incumbent.get("arch")})
    return rows


def prefix_rows(run_dir: Path, sizes: Sizes, seeds: list[int]) -> list[dict[str, Any]]:
    """Per seed and estimator, the Spearman of its score at B = few_steps with TSE at max_steps
    and with the truth, over the ``sample`` arm's archs (lce_learned: those not fitted on)."""
    space = search_spaces.create("nb201")
    truth = create_ground_truth("nb201", space=space, column="cifar10_test")
    single = {"tse": create_estimator("tse"), "tlmini": create_estimator("tlmini"),
              "lce": create_estimator("lce", target=sizes.max_steps)}
    rows = []
    for seed in seeds:
        stage = search(run_dir, "sample", sizes, seed)
        if not stage.output.exists():
            continue
        records = [r for r in read_jsonl(stage.output.parent / "results.jsonl")
                   if r["steps"] == sizes.max_steps]
        trajectories = [Trajectory.from_dict(r["trajectory"]) for r in records]
        candidates = [Candidate(r["arch"], r["params"], r["flops"]) for r in records]
        final = [r["scores"]["tse"][str(sizes.max_steps)] for r in records]
        truths = [truth.lookup(r["arch"]) for r in records]
        learned = create_estimator("lce_learned", target=sizes.max_steps, fit_size=sizes.top_n,
                                   seed=seed).score_set(trajectories, candidates, sizes.few_steps)
        fitted = [s == f for s, f in zip(learned, final)]  # they score their observed TSE
        for name in PREFIX_ESTIMATORS:
            scores = learned if name == "lce_learned" else [
                single[name].score(t, c, sizes.few_steps) for t, c in zip(trajectories, candidates)]
            keep = [i for i in range(len(records)) if truths[i] is not None
                    and not (name == "lce_learned" and fitted[i])]
            rows.append({"seed": seed, "estimator": name, "archs": len(keep),
                         "spearman_final_tse": _spearman([scores[i] for i in keep],
                                                         [final[i] for i in keep]),
                         "spearman_truth": _spearman([scores[i] for i in keep],
                                                     [truths[i] for i in keep])})
    return rows


def _spearman(scores: list[float], truths: list[float]) -> float | None:
    return rank_metrics(scores, truths, ks=(), resamples=0)["spearman"] if scores else None


def _mean(values: list[Any], digits: int = 2) -> str:
    """The mean of the values that are not ``None``, with its bootstrap interval; "-" if none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return "-"
    mean, low, high = mean_interval(kept)
    return value_with_interval(mean, (low, high), digits)


def write_tables(rows: list[dict[str, Any]], prefix: list[dict[str, Any]], sizes: Sizes,
                 out: Path, command: str) -> str:
    """``OUT/runs.csv``, ``OUT/table.md`` and ``OUT/prefix.md``; returns the two tables."""
    atomic_write_csv(out / "runs.csv", rows, ["arm", "seed", "truth", "space_rank",
                                               "evaluations", "steps", "minutes", "arch"])
    lines = [f"# LCE at equal fine-tune steps ({sizes.steps:,} per search)", "",
             f"Command: `{command}`", "",
             f"lce: {sizes.few_evaluations} evaluations at {sizes.few_steps} steps ranked by the "
             f"extrapolated loss at {sizes.max_steps}, the top {sizes.top_n} at "
             f"{sizes.max_steps}; halving: the same ranked by observed TSE. Incumbent (best TSE "
             "at max_steps): NB201 CIFAR-10 test accuracy and rank among the 15,625 archs, "
             "means over seeds [bootstrap 95 % interval].", "",
             "| arm | seeds | true accuracy | rank in space | evaluations | steps | minutes |",
             "|---|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        lines.append(f"| {arm} | {len(mine)} | {_mean([r['truth'] for r in mine])} | "
                     f"{_mean([r['space_rank'] for r in mine], 0)} | "
                     f"{np.mean([r['evaluations'] for r in mine]):.0f} | "
                     f"{np.mean([r['steps'] for r in mine]):,.0f} | "
                     f"{np.mean([r['minutes'] for r in mine]):.1f} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(out / "table.md", table)
    lines = [f"# Scores at B = {sizes.few_steps} against the fine-tune to {sizes.max_steps}", "",
             f"Command: `{command}`", "",
             f"Over each seed's sample-arm archs (lce_learned: fitted on {sizes.top_n} of them, "
             "scored on the others): Spearman with TSE at max_steps and with the true accuracy, "
             "means over seeds [bootstrap 95 % interval].", "",
             "| estimator at B = few_steps | archs | ρ with TSE at max_steps | ρ with truth |",
             "|---|---|---|---|"]
    for name in PREFIX_ESTIMATORS:
        mine = [r for r in prefix if r["estimator"] == name]
        if mine:
            lines.append(f"| {name} | {np.mean([r['archs'] for r in mine]):.0f} | "
                         f"{_mean([r['spearman_final_tse'] for r in mine], 3)} | "
                         f"{_mean([r['spearman_truth'] for r in mine], 3)} |")
    prefix_table = "\n".join(lines) + "\n"
    atomic_write_text(out / "prefix.md", prefix_table)
    return table + "\n" + prefix_table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "quickstart",
                        help="the supernet's run dir (configs/quickstart.yaml, trained when "
                             "missing)")
    parser.add_argument("--inner", nargs="+", choices=["sample", "evolution"],
                        default=["sample", "evolution"], help="strategies wrapped by lce")
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1")
    parser.add_argument("--few-steps", type=positive_int, default=20)
    parser.add_argument("--few-evaluations", type=positive_int, default=200)
    parser.add_argument("--top-n", type=positive_int, default=10)
    parser.add_argument("--max-steps", type=positive_int, default=100)
    parser.add_argument("--jobs", type=positive_int, default=2, help="searches run side by side")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "lce")
    args = parser.parse_args(argv)
    sizes = Sizes(args.few_steps, args.few_evaluations, args.top_n, args.max_steps)
    if not 4 <= sizes.few_steps < sizes.max_steps or not 3 <= sizes.top_n <= sizes.few_evaluations:
        parser.error("need 4 <= --few-steps < --max-steps (lce fits a 3-parameter curve) and "
                     "3 <= --top-n <= --few-evaluations (lce_learned fits on top_n archs)")
    inner = ["sample", *(x for x in args.inner if x != "sample")]  # the prefix table reads sample
    names, seeds = arms(inner), list(range(args.seeds))
    runner = StageRunner(args.out / "commands.jsonl", cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    runner.run([train_stage("supernet", args.run_dir, REPO / "configs" / "quickstart.yaml",
                            log=args.run_dir.parent / f"{args.run_dir.name}-train.log")])
    runner.run([search(args.run_dir, arm, sizes, seed) for seed in seeds for arm in names],
               args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "experiments/lce.py", *argv])
    print(write_tables(collect(args.run_dir, names, sizes, seeds),
                       prefix_rows(args.run_dir, sizes, seeds), sizes, args.out, command))
    return 0


if __name__ == "__main__":
    run_cli(main)
