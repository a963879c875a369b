"""Each estimator's Spearman minus a baseline's on the same candidates, with a paired bootstrap
95 % interval, from the ``scores.csv`` that a search writes beside its summary.

    python benchmarks/paired_difference.py results/cpu-table2/*/scores.csv
        [--baseline params] [--budget 100] [--estimators tse tse_e ...]
    python benchmarks/paired_difference.py LEVER/scores.csv --against BASELINE/scores.csv
    python benchmarks/paired_difference.py SEED123/scores.csv SEED124/scores.csv --pool

With ``--against``, each estimator is compared with the same estimator in another search of
the same candidates (a training lever against its baseline supernet), matched by arch. With
``--pool``, the files are several candidate draws searched on one supernet: one table of each
estimator's Spearman per draw, its mean over the draws and the mean of its paired difference
with the baseline, each with a stratified bootstrap interval (every draw's candidates
resampled on their own, :func:`speedynas_search.metrics.pooled_interval`).

Two estimators' separate intervals overlap long before their difference is noise: both are
measured on one candidate set, so the difference is resampled pairwise
(:func:`speedynas_search.metrics.difference_interval`). Prints one Markdown table per file.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from speedynas_search.metrics import difference_interval, pooled_interval, rank_metrics


def read_columns(path: Path) -> dict[str, list[float]]:
    """The numeric columns of a scores.csv (``truth`` and ``<estimator>@B<budget>``; an empty
    cell, a non-finite score, is NaN and ranks at the bottom)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "truth" not in rows[0]:
        raise SystemExit(f"error: {path} is not a search's scores.csv (no 'truth' column)")
    return {name: [float(row[name]) if row[name] != "" else float("nan") for row in rows]
            for name in rows[0] if name == "truth" or "@B" in name}


def read_archs(path: Path) -> list[str]:
    """The ``arch`` column of a scores.csv, in its row order."""
    with path.open(newline="") as handle:
        return [row["arch"] for row in csv.DictReader(handle)]


def aligned(columns: dict[str, list[float]], archs: list[str], order: list[str],
            path: Path) -> dict[str, list[float]]:
    """``columns`` (rows in ``archs`` order) reordered to ``order``; refused unless both hold
    the same candidates."""
    if sorted(archs) != sorted(order):
        raise SystemExit(f"error: {path} scores other candidates ({len(archs)} archs, "
                         f"{len(set(archs) ^ set(order))} not shared); --against needs the same")
    row = {arch: i for i, arch in enumerate(archs)}
    return {name: [values[row[arch]] for arch in order] for name, values in columns.items()}


def against_table(columns: dict[str, list[float]], other: dict[str, list[float]],
                  budget: int, estimators: list[str] | None) -> str:
    """Markdown rows: each estimator's Spearman here, in ``other`` (the same candidates in the
    same order) and their paired difference."""
    suffix = f"@B{budget}"
    names = estimators or [c[: -len(suffix)] for c in columns
                           if c.endswith(suffix) and c in other]
    missing = [n for n in names if n + suffix not in columns or n + suffix not in other]
    if missing or not names:
        raise SystemExit(f"error: no column {(missing or ['any'])[0]}{suffix} in both files")
    truth = columns["truth"]
    lines = [f"| estimator | Spearman B={budget} | against | difference | paired 95 % interval |",
             "|---|---|---|---|---|"]
    for name in names:
        rho, base_rho, shown = paired_spearman(columns[name + suffix], other[name + suffix], truth)
        lines.append(f"| {name} | {rho:.3f} | {base_rho:.3f} | {rho - base_rho:+.3f} | {shown} |")
    return "\n".join(lines)


def paired_spearman(scores: list[float], base: list[float],
                    truth: list[float]) -> tuple[float, float, str]:
    """Spearman of ``scores`` and of ``base`` against ``truth``, and their paired difference's
    95 % interval as printed."""
    rho, base_rho = (rank_metrics(v, truth, resamples=0)["spearman"] for v in (scores, base))
    interval = difference_interval("spearman", scores, base, truth)
    return rho, base_rho, shown_interval(interval, signed=True)


def shown_interval(interval: list[float] | None, signed: bool) -> str:
    """An interval as printed, ``[low, high]`` to 3 decimals (``signed``: with a sign), or n/a."""
    form = "{:+.3f}" if signed else "{:.3f}"
    return "[" + ", ".join(map(form.format, interval)) + "]" if interval else "n/a"


def estimator_names(columns: dict[str, list[float]], suffix: str,
                    estimators: list[str] | None) -> list[str]:
    """``estimators``, or every estimator with a column at ``suffix``."""
    return estimators or [c[: -len(suffix)] for c in columns if c.endswith(suffix)]


def refuse_missing(columns: dict[str, list[float]], names: list[str], suffix: str,
                   path: Path | None = None) -> None:
    """Exit naming the first of ``names`` without a column at ``suffix`` (and the file)."""
    missing = [n for n in names if n + suffix not in columns]
    if missing:
        known = sorted({c.split("@B")[0] for c in columns if "@B" in c})
        where = f" in {path}" if path else ""
        raise SystemExit(f"error: no column {missing[0]}{suffix}{where}; "
                         f"estimators: {', '.join(known)}")


def pooled_table(sets: list[dict[str, list[float]]], paths: list[Path], baseline: str,
                 budget: int, estimators: list[str] | None) -> str:
    """Markdown rows over several candidate draws: each estimator's Spearman per draw, the
    mean with its stratified interval, and the mean paired difference with the baseline."""
    suffix = f"@B{budget}"
    names = estimator_names(sets[0], suffix, estimators)
    for columns, path in zip(sets, paths):
        refuse_missing(columns, [baseline, *names], suffix, path)

    def spearman(columns: dict[str, list[float]], name: str) -> float:
        return rank_metrics(columns[name + suffix], columns["truth"], resamples=0)["spearman"]

    bases = [spearman(columns, baseline) for columns in sets]
    lines = [f"| estimator | Spearman B={budget} per draw | mean | 95 % interval | "
             f"minus {baseline} ({' / '.join(f'{b:.3f}' for b in bases)}) per draw | mean | "
             "paired 95 % interval |", "|---" * 7 + "|"]
    for name in names:
        if name == baseline:
            continue
        rhos = [spearman(columns, name) for columns in sets]
        diffs = [rho - base for rho, base in zip(rhos, bases)]
        alone = pooled_interval("spearman", [(c[name + suffix], None, c["truth"]) for c in sets])
        paired = pooled_interval("spearman", [(c[name + suffix], c[baseline + suffix], c["truth"])
                                              for c in sets])
        lines.append(f"| {name} | {' / '.join(f'{r:.3f}' for r in rhos)} | "
                     f"{sum(rhos) / len(rhos):.3f} | {shown_interval(alone, signed=False)} | "
                     f"{' / '.join(f'{d:+.3f}' for d in diffs)} | {sum(diffs) / len(diffs):+.3f} | "
                     f"{shown_interval(paired, signed=True)} |")
    return "\n".join(lines)


def difference_table(columns: dict[str, list[float]], baseline: str, budget: int,
                     estimators: list[str] | None) -> str:
    """Markdown rows: Spearman of each estimator, of the baseline, and their paired difference."""
    suffix = f"@B{budget}"
    names = estimator_names(columns, suffix, estimators)
    refuse_missing(columns, [baseline, *names], suffix)
    truth = columns["truth"]
    base = columns[baseline + suffix]
    base_rho = rank_metrics(base, truth, resamples=0)["spearman"]
    lines = [f"| estimator | Spearman B={budget} | minus {baseline} ({base_rho:.3f}) | "
             "paired 95 % interval |", "|---|---|---|---|"]
    for name in names:
        if name == baseline:
            continue
        rho, _, shown = paired_spearman(columns[name + suffix], base, truth)
        lines.append(f"| {name} | {rho:.3f} | {rho - base_rho:+.3f} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=Path, help="scores.csv files")
    parser.add_argument("--baseline", default="params")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--estimators", nargs="+", help="default: every estimator in the file")
    parser.add_argument("--against", type=Path,
                        help="another search's scores.csv of the same candidates: compare each "
                             "estimator with itself there instead of with --baseline")
    parser.add_argument("--pool", action="store_true",
                        help="the files are candidate draws of one supernet: one table of means")
    args = parser.parse_args()
    if args.pool and args.against:
        raise SystemExit("error: --pool and --against do not go together")
    for path in [*args.scores, *([args.against] if args.against else [])]:
        if not path.is_file():
            raise SystemExit(f"error: {path} is not a file")
    against = ((read_columns(args.against), read_archs(args.against)) if args.against
               else None)
    if args.pool:
        sets = [read_columns(path) for path in args.scores]
        print(f"## {len(sets)} candidate draws: {', '.join(map(str, args.scores))}\n\n"
              + pooled_table(sets, args.scores, args.baseline, args.budget, args.estimators)
              + "\n")
        return
    for path in args.scores:
        columns = read_columns(path)
        if against:
            other = aligned(*against, read_archs(path), args.against)
            table = against_table(columns, other, args.budget, args.estimators)
            print(f"## {path} against {args.against}\n\n{table}\n")
        else:
            print(f"## {path}\n\n" + difference_table(columns, args.baseline, args.budget,
                                                      args.estimators) + "\n")


if __name__ == "__main__":
    main()
