"""Each estimator's Spearman minus a baseline's on the same candidates, with a paired bootstrap
95 % interval, from the ``scores.csv`` that a search writes beside its summary.

    python benchmarks/paired_difference.py results/cpu-table2/*/scores.csv
        [--baseline params] [--budget 100] [--estimators tse tse_e ...]

Two estimators' separate intervals overlap long before their difference is noise: both are
measured on one candidate set, so the difference is resampled pairwise
(:func:`search_pipeline.metrics.difference_interval`). Prints one Markdown table per file.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from search_pipeline.metrics import difference_interval, rank_metrics


def read_columns(path: Path) -> dict[str, list[float]]:
    """The numeric columns of a scores.csv (``truth`` and ``<estimator>@B<budget>``; an empty
    cell, a non-finite score, is NaN and ranks at the bottom)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "truth" not in rows[0]:
        raise SystemExit(f"error: {path} is not a search's scores.csv (no 'truth' column)")
    return {name: [float(row[name]) if row[name] != "" else float("nan") for row in rows]
            for name in rows[0] if name == "truth" or "@B" in name}


def difference_table(columns: dict[str, list[float]], baseline: str, budget: int,
                     estimators: list[str] | None) -> str:
    """Markdown rows: Spearman of each estimator, of the baseline, and their paired difference."""
    suffix = f"@B{budget}"
    names = estimators or [c[: -len(suffix)] for c in columns if c.endswith(suffix)]
    missing = [n for n in [baseline, *names] if n + suffix not in columns]
    if missing:
        known = sorted({c.split("@B")[0] for c in columns if "@B" in c})
        raise SystemExit(f"error: no column {missing[0]}{suffix}; estimators: {', '.join(known)}")
    truth = columns["truth"]
    base = columns[baseline + suffix]
    base_rho = rank_metrics(base, truth, resamples=0)["spearman"]
    lines = [f"| estimator | Spearman B={budget} | minus {baseline} ({base_rho:.3f}) | "
             "paired 95 % interval |", "|---|---|---|---|"]
    for name in names:
        if name == baseline:
            continue
        scores = columns[name + suffix]
        rho = rank_metrics(scores, truth, resamples=0)["spearman"]
        interval = difference_interval("spearman", scores, base, truth)
        shown = f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "n/a"
        lines.append(f"| {name} | {rho:.3f} | {rho - base_rho:+.3f} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=Path, help="scores.csv files")
    parser.add_argument("--baseline", default="params")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--estimators", nargs="+", help="default: every estimator in the file")
    args = parser.parse_args()
    for path in args.scores:
        if not path.is_file():
            raise SystemExit(f"error: {path} is not a file")
        print(f"## {path}\n\n" + difference_table(read_columns(path), args.baseline,
                                                  args.budget, args.estimators) + "\n")


if __name__ == "__main__":
    main()
