"""Choose a rank combination on tuning searches: every subset of the given members, scored.

    python benchmarks/choose_combo.py RUN_DIR/search/NAME [MORE ...] [--budget 100]
        [--max-members 4] [--members tse tse_e sovl valacc_inherited params synflow jacov nwot]
        [--show 15] [--by spearman|kendall|kendall_top|precision_top|top1|top10]

Reads each finished search's ``results.jsonl`` (per-candidate scores of every member), its
space (``summary.json``) and its ground truth (``ground_truth`` in its ``config.yaml``), forms
the mean-rank combination (:func:`estimators.combo.rank_mean`, exactly what ``combo(a+b+...)``
computes) of every subset of ``--members`` with up to ``--max-members`` members, and prints the
best by ``--by`` (Spearman by default; with several searches, the mean over them) with the other
metrics, and each member alone. Run it on candidate seeds that are *not* the ones reported, then
name the winner in the reported search's ``estimators.names`` (or a strategy's fitness).
"""
from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.config import load_config
from estimators.combo import inline_name, rank_mean
from speedynas_search import pair_with_truth, rank_metrics
from speedynas_search.results_store import record_score
from speedynas_search.search_config import SearchConfig

DEFAULT_MEMBERS = ["tse", "tse_e", "sovl", "valacc_inherited", "params", "synflow", "jacov",
                   "nwot", "snip", "grad_norm"]


def search_metrics(search_dir: Path, members: list[str], budget: int | None,
                   max_members: int) -> tuple[str, dict[str, tuple[int, dict[str, Any]]]]:
    """A description of the search and, per combination name, its size and metrics."""
    summary = json.loads((search_dir / "summary.json").read_text())
    space = search_spaces.create(summary["settings"]["space"])
    cfg = load_config(SearchConfig, search_dir / "config.yaml", context={"space": space.name})
    at = str(budget or max(cfg.finetune.budgets))
    results = read_jsonl(search_dir / "results.jsonl")
    truth = cfg.ground_truth.create(space)
    if truth is None:
        raise SystemExit(f"{search_dir} was searched without ground truth")
    archs = [r["arch"] for r in results]
    columns = {m: [record_score(r, m, at) for r in results] for m in members}
    rows = {}
    for size in range(1, max_members + 1):
        for subset in combinations(members, size):
            scores = columns[subset[0]] if size == 1 else rank_mean([columns[m] for m in subset])
            paired = pair_with_truth(archs, scores, truth.lookup)
            name = subset[0] if size == 1 else inline_name("combo", subset)
            rows[name] = (size, rank_metrics(paired.scores, paired.truths, resamples=0))
    return f"{len(results)} candidates of {search_dir}, B={at}, truth {truth.describe()}", rows


def mean_metrics(per_search: list[dict[str, Any]]) -> dict[str, float]:
    """Each shown metric's mean over the searches (NaN where a search has none)."""
    return {key: float(np.mean([m[key] if m[key] is not None else np.nan for m in per_search]))
            for key in METRICS}


METRICS = ("spearman", "kendall", "kendall_top", "precision_top", "top1", "top10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("search_dirs", type=Path, nargs="+")
    parser.add_argument("--budget", type=int, help="B to score (default: each search's largest)")
    parser.add_argument("--members", nargs="+", default=DEFAULT_MEMBERS)
    parser.add_argument("--max-members", type=int, default=4)
    parser.add_argument("--show", type=int, default=15)
    parser.add_argument("--by", default="spearman", choices=METRICS,
                        help="sort by this metric (the top ones: how the best candidates are "
                             "ordered, what a search strategy's choice depends on)")
    args = parser.parse_args()
    searches = [search_metrics(d, args.members, args.budget, args.max_members)
                for d in args.search_dirs]
    for description, _ in searches:
        print(description)
    names = list(searches[0][1])
    rows = [(name, searches[0][1][name][0],
             mean_metrics([metrics[name][1] for _, metrics in searches])) for name in names]
    rows.sort(key=lambda row: -np.nan_to_num(row[2][args.by], nan=-1e9))
    print(f"sorted by {args.by}" + (f", means over {len(searches)} searches"
                                     if len(searches) > 1 else ""))
    print(f"{'estimator':58s} Spearman  Kendall  Kendall-top  precision-top  top-1  top-10")
    shown = rows[: args.show] + [row for row in rows[args.show:] if row[1] == 1]
    for name, _, m in shown:
        print(f"{name:58s} {m['spearman']:8.3f} {m['kendall']:8.3f} {m['kendall_top']:12.3f} "
              f"{m['precision_top']:14.3f} {m['top1']:6.2f} {m['top10']:7.2f}")


if __name__ == "__main__":
    main()
