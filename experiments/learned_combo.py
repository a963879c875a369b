"""Learned combinations against the published bar: ``combo_learned`` fitted on 20, 50 and 100
labelled archs, Spearman on every other arch, for several feature sets.

    python experiments/learned_combo.py --searches SEARCH_DIR [SEARCH_DIR ...]
                                       [--fit-sizes 20 50 100] [--seeds 10] [--budget 100]
                                       [--out results/learned_combo]

The searches' ``results.jsonl`` records are joined by arch: an arch's trajectory takes the
fine-tune records (TSE) of the first search that fine-tuned it and the zero-cost values of
every search that measured them (a zero-cost-only search at the benchmark's network size can
add them to a fine-tuned search of the same archs). Only archs with every feature of a set
take part in it. Each (feature set, fit size, seed) fits the estimator exactly as a search
does (:class:`estimators.combo.Combo`, ``method=learned``; the seed picks the fit set) and
scores the archs it was not fitted on against the NB201 table's CIFAR-10 test accuracy; the
label-free rank mean of the zero-cost members is scored on the same archs beside it. Means over
seeds with bootstrap 95 % intervals go to ``OUT/table.md``, every run to ``OUT/runs.csv``.
NAS-Bench-Suite-Zero (Krishnakumar et al. 2022) reports 0.905 on NB201 CIFAR-10 for gradient-
boosted trees on zero-cost features fitted on 100 labelled archs.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, NamedTuple

import search_spaces
from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text, read_jsonl
from speedynas_core.cli import positive_int, run_cli
from estimators import Candidate, Trajectory, create_estimator
from search_spaces import create_ground_truth
from speedynas_search import rank_metrics
from speedynas_search.metrics import mean_interval

REPO = Path(__file__).resolve().parents[1]
ZERO_COST = ["grad_norm", "snip", "synflow", "jacov", "nwot"]
PUBLISHED = 0.905


class FeatureSet(NamedTuple):
    name: str
    members: list[str]
    encoding: bool = False


FEATURE_SETS = [
    FeatureSet("zero-cost", ZERO_COST),
    FeatureSet("zero-cost + params/flops", [*ZERO_COST, "params", "flops"]),
    FeatureSet("zero-cost + params/flops + encoding", [*ZERO_COST, "params", "flops"], True),
    FeatureSet("zero-cost + params/flops + TSE", [*ZERO_COST, "params", "flops", "tse", "tse_e"]),
    FeatureSet("zero-cost + params/flops + TSE + encoding",
               [*ZERO_COST, "params", "flops", "tse", "tse_e"], True),
]


def joined(searches: list[Path]) -> tuple[list[Trajectory], list[Candidate]]:
    """One trajectory and candidate per distinct arch of the searches (module docstring)."""
    space = search_spaces.create("nb201")
    records: dict[str, list[dict[str, Any]]] = {}
    for search in searches:
        for record in read_jsonl(search / "results.jsonl"):
            records.setdefault(record["arch"], []).append(record)
    trajectories, candidates = [], []
    for arch, mine in records.items():
        tuned = next((r for r in mine if r["trajectory"]["train_losses"]), mine[0])
        zero_cost: dict[str, float] = {}
        for record in reversed(mine):  # the first search's value wins
            zero_cost.update(record["trajectory"].get("zero_cost") or {})
        flops = next((r["flops"] for r in mine if r["flops"] is not None), None)
        trajectories.append(Trajectory.from_dict({**tuned["trajectory"], "zero_cost": zero_cost}))
        candidates.append(Candidate(arch, tuned["params"], flops,
                                    tuple(space.encode(space.parse(arch)))))
    return trajectories, candidates


def usable(feature_set: FeatureSet, trajectories: list[Trajectory],
           candidates: list[Candidate], budget: int) -> list[int]:
    """Indices of the archs that have every feature of ``feature_set``."""
    members = [create_estimator(m) for m in feature_set.members]
    return [i for i, (t, c) in enumerate(zip(trajectories, candidates))
            if (c.flops is not None or "flops" not in feature_set.members)
            and not any(m.missing(t, budget) for m in members)]


def spearman(scores: list[float], archs: list[str], truths: dict[str, float]) -> float | None:
    """Spearman of the finite scores with the truths."""
    pairs = [(s, truths[a]) for s, a in zip(scores, archs) if math.isfinite(s)]
    return rank_metrics(*zip(*pairs), ks=(), resamples=0)["spearman"] if pairs else None


def run(trajectories: list[Trajectory], candidates: list[Candidate], truths: dict[str, float],
        fit_sizes: list[int], seeds: int, budget: int) -> list[dict[str, Any]]:
    """One row per (feature set, fit size, seed) that the joined searches can feed."""
    rows = []
    label_free = create_estimator("combo", members=["synflow", "jacov", "nwot"])
    for feature_set in FEATURE_SETS:
        kept = usable(feature_set, trajectories, candidates, budget)
        if len(kept) <= max(fit_sizes):
            print(f"{feature_set.name}: {len(kept)} archs have every feature; skipped")
            continue
        trajs = [trajectories[i] for i in kept]
        cands = [candidates[i] for i in kept]
        archs = [c.arch for c in cands]
        baseline = label_free.score_set(trajs, cands, budget)
        for fit_size in fit_sizes:
            for seed in range(seeds):
                learned = create_estimator("combo_learned", members=feature_set.members,
                                           fit_size=fit_size, seed=seed,
                                           encoding=feature_set.encoding)
                scores = learned.score_set(trajs, cands, budget, truths)
                held_out = [math.nan if math.isnan(s) else b for s, b in zip(scores, baseline)]
                rows.append({"features": feature_set.name, "fit_size": fit_size, "seed": seed,
                             "archs": len(kept), "evaluated": sum(map(math.isfinite, scores)),
                             "spearman": spearman(scores, archs, truths),
                             "label_free_spearman": spearman(held_out, archs, truths)})
    return rows


def table(rows: list[dict[str, Any]], command: str) -> str:
    """Markdown: mean Spearman [bootstrap 95 % interval] per feature set and fit size."""
    fit_sizes = sorted({r["fit_size"] for r in rows})
    lines = [f"Command: `{command}`", "",
             "| features | archs | " + " | ".join(f"fit on {k}" for k in fit_sizes)
             + " | label-free combo(synflow+jacov+nwot), same archs |",
             "|---|---|" + "---|" * (len(fit_sizes) + 1)]
    for name in dict.fromkeys(r["features"] for r in rows):
        mine = [r for r in rows if r["features"] == name]
        cells = []
        for k in fit_sizes:
            mean, low, high = mean_interval([r["spearman"] for r in mine if r["fit_size"] == k])
            cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]")
        base = mean_interval([r["label_free_spearman"] for r in mine])
        lines.append(f"| {name} | {mine[0]['archs']} | " + " | ".join(cells)
                     + f" | {base[0]:.3f} |")
    lines += ["", f"Spearman on the archs not fitted on, mean over {len({r['seed'] for r in rows})}"
              f" fit sets (seeds) [bootstrap 95 % interval]. Published bar "
              f"(NAS-Bench-Suite-Zero, 100 labels): {PUBLISHED}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", nargs="+", type=Path, required=True)
    parser.add_argument("--fit-sizes", nargs="+", type=positive_int, default=[20, 50, 100])
    parser.add_argument("--seeds", type=positive_int, default=10)
    parser.add_argument("--budget", type=positive_int, default=100, help="B of the TSE features")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "learned_combo")
    args = parser.parse_args(argv)
    trajectories, candidates = joined(args.searches)
    truth = create_ground_truth("nb201", space=search_spaces.create("nb201"))
    truths = {c.arch: truth.lookup(c.arch) for c in candidates}
    rows = run(trajectories, candidates, truths, args.fit_sizes, args.seeds, args.budget)
    if not rows:
        raise SystemExit("no feature set has enough archs with every feature: add a search "
                         "that measured the missing ones")
    command = "python experiments/learned_combo.py --searches " + " ".join(
        str(s) for s in args.searches)
    text = table(rows, command)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "table.md", text)
    atomic_write_csv(args.out / "runs.csv", rows)


if __name__ == "__main__":
    run_cli(main)
