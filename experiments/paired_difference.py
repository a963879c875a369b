"""Each estimator's Spearman minus a baseline's on the same candidates, with a paired bootstrap
95 % interval, from the ``scores.csv`` that a search writes beside its summary.

    python experiments/paired_difference.py results/table2/*/scores.csv
        [--baseline params] [--budget 100] [--estimators tse tse_e ...]
    python experiments/paired_difference.py LEVER/scores.csv --against BASELINE/scores.csv
    python experiments/paired_difference.py SEED123/scores.csv SEED124/scores.csv --pool

With ``--against``, each estimator is compared with the same estimator in another search of
the same candidates (a training lever against its baseline supernet), matched by arch. With
``--pool``, the files are several candidate draws searched on one supernet: one table of each
estimator's Spearman per draw, its mean over the draws and the mean of its paired difference
with the baseline, each with a stratified bootstrap interval. Prints Markdown
(:func:`speedynas_search.analysis.paired_difference_report`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from speedynas_core.cli import positive_int, run_cli
from speedynas_search.analysis import paired_difference_report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=Path, help="scores.csv files")
    parser.add_argument("--baseline", default="params")
    parser.add_argument("--budget", type=positive_int, default=100)
    parser.add_argument("--estimators", nargs="+", help="default: every estimator in the file")
    parser.add_argument("--against", type=Path,
                        help="another search's scores.csv of the same candidates: compare each "
                             "estimator with itself there instead of with --baseline")
    parser.add_argument("--pool", action="store_true",
                        help="the files are candidate draws of one supernet: one table of means")
    args = parser.parse_args(argv)
    print(paired_difference_report(args.scores, args.baseline, args.budget, args.estimators,
                                   args.against, args.pool))
    return 0


if __name__ == "__main__":
    run_cli(main)
