"""Choose a rank combination on a tuning search: every subset of the given members, scored.

    python benchmarks/choose_combo.py RUN_DIR/search/NAME [--budget 100] [--max-members 4]
        [--members tse tse_e sovl valacc_inherited params synflow jacov nwot] [--show 15]

Reads the finished search's ``results.jsonl`` (per-candidate scores of every member), its
space (``summary.json``) and its ground truth (``ground_truth`` in its ``config.yaml``), forms the mean-rank combination
(:func:`estimators.combo.rank_mean`, exactly what ``combo(a+b+...)`` computes) of every subset
of ``--members`` with up to ``--max-members`` members, and prints the best by Spearman with
Kendall and top-10 true accuracy, and each member alone. Run it on a candidate seed that is *not*
the one reported, then name the winner in the reported search's ``estimators.names``.
"""
from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import search_spaces
from core.atomic_io import read_jsonl
from core.config import load_config
from estimators.combo import inline_name, rank_mean
from search_pipeline import pair_with_truth, rank_metrics
from search_pipeline.search_config import SearchConfig

DEFAULT_MEMBERS = ["tse", "tse_e", "sovl", "valacc_inherited", "params", "synflow", "jacov",
                   "nwot", "snip", "grad_norm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("search_dir", type=Path)
    parser.add_argument("--budget", type=int, help="B to score (default: the search's largest)")
    parser.add_argument("--members", nargs="+", default=DEFAULT_MEMBERS)
    parser.add_argument("--max-members", type=int, default=4)
    parser.add_argument("--show", type=int, default=15)
    args = parser.parse_args()
    summary = json.loads((args.search_dir / "summary.json").read_text())
    space = search_spaces.create(summary["settings"]["space"])
    cfg = load_config(SearchConfig, args.search_dir / "config.yaml",
                      context={"space": space.name})
    budget = str(args.budget or max(cfg.finetune.budgets))
    results = read_jsonl(args.search_dir / "results.jsonl")
    truth = cfg.ground_truth.create(space)
    if truth is None:
        raise SystemExit(f"{args.search_dir} was searched without ground truth")
    archs = [r["arch"] for r in results]
    columns = {m: [r["scores"][m][budget] for r in results] for m in args.members}

    def evaluate(scores: list[float]) -> dict:
        paired = pair_with_truth(archs, scores, truth.lookup)
        return rank_metrics(paired.scores, paired.truths)

    rows = []
    for size in range(1, args.max_members + 1):
        for subset in combinations(args.members, size):
            scores = columns[subset[0]] if size == 1 else rank_mean([columns[m] for m in subset])
            name = subset[0] if size == 1 else inline_name("combo", subset)
            rows.append((name, size, evaluate(scores)))
    rows.sort(key=lambda row: -(row[2]["spearman"] or -1.0))
    print(f"{len(results)} candidates of {args.search_dir}, B={budget}, truth "
          f"{truth.describe()}")
    print(f"{'estimator':58s} Spearman  Kendall  top-10")
    shown = rows[: args.show] + [row for row in rows[args.show:] if row[1] == 1]
    for name, _, m in shown:
        print(f"{name:58s} {m['spearman']:8.3f} {m['kendall']:8.3f} {m['top10']:7.2f}")


if __name__ == "__main__":
    main()
