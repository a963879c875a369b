"""Choose a rank combination on tuning searches: every subset of the given members, scored.

    python experiments/choose_combo.py RUN_DIR/search/NAME [MORE ...] [--budget 100]
        [--max-members 4] [--members tse tse_e sovl valacc_inherited params synflow jacov nwot]
        [--show 15] [--by spearman|kendall|kendall_top|precision_top|top1|top10]

Reads each finished search's ``results.jsonl`` (per-candidate scores of every member), its
space (``summary.json``) and its ground truth (``ground_truth`` in its ``config.yaml``), forms
the mean-rank combination (exactly what ``combo(a+b+...)`` computes) of every subset of
``--members`` with up to ``--max-members`` members, and prints the best by ``--by`` (Spearman
by default; with several searches, the mean over them) with the other metrics, and each member
alone (:func:`speedynas_search.analysis.combo_report`). Run it on candidate seeds that are
*not* the ones reported, then name the winner in the reported search's ``estimators.names`` (or
a strategy's fitness).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from speedynas_core.cli import positive_int, run_cli
from speedynas_search.analysis import COMBO_MEMBERS, COMBO_METRICS, combo_report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("search_dirs", type=Path, nargs="+")
    parser.add_argument("--budget", type=positive_int, help="B to score (default: each search's largest)")
    parser.add_argument("--members", nargs="+", default=COMBO_MEMBERS)
    parser.add_argument("--max-members", type=positive_int, default=4)
    parser.add_argument("--show", type=positive_int, default=15)
    parser.add_argument("--by", default="spearman", choices=COMBO_METRICS,
                        help="sort by this metric (the top ones: how the best candidates are "
                             "ordered, what a search strategy's choice depends on)")
    args = parser.parse_args(argv)
    print(combo_report(args.search_dirs, args.members, args.budget, args.max_members, args.show,
                       args.by))
    return 0


if __name__ == "__main__":
    run_cli(main)
