"""Analyses of finished searches, as Markdown or text: paired differences of estimators, the
choice of a rank combination, and a before/after comparison of two searches' records.

- :func:`paired_difference_report`: each estimator's Spearman minus a baseline's on the same
  candidates (one search's ``scores.csv``), minus the same estimator in another search of the
  same candidates (``against``), or pooled over several candidate draws (``pool``), each with
  a paired bootstrap 95 % interval. Two estimators' separate intervals overlap long before
  their difference is noise: both are measured on one candidate set, so the difference is
  resampled pairwise (:func:`~speedynas_search.metrics.difference_interval`; over draws,
  every draw's candidates on their own, :func:`~speedynas_search.metrics.pooled_interval`).
- :func:`combo_report`: the mean-rank combination (:func:`estimators.combo.rank_mean`,
  exactly what ``combo(a+b+...)`` computes) of every subset of some members, scored on
  tuning searches against their ground truth, best first.
- :func:`compare_records`: two searches' ``results.jsonl`` record by record, timings aside.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from estimators.combo import inline_name, rank_mean
from speedynas_core.atomic_io import read_jsonl
from speedynas_core.config import load_config
from speedynas_core.errors import SpeedyNASError

from .metrics import difference_interval, pair_with_truth, pooled_interval, rank_metrics
from .results_store import record_score
from .search_config import SearchConfig

__all__ = ["COMBO_MEMBERS", "COMBO_METRICS", "combo_report", "compare_records",
           "paired_difference_report"]

Columns = dict[str, list[float]]

# --- paired differences of estimators (scores.csv) ------------------------------------------


def read_columns(path: Path) -> Columns:
    """The numeric columns of a scores.csv (``truth`` and ``<estimator>@B<budget>``; an empty
    cell, a non-finite score, is NaN and ranks at the bottom)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "truth" not in rows[0]:
        raise SpeedyNASError(f"{path} is not a search's scores.csv (no 'truth' column)")
    return {name: [float(row[name]) if row[name] != "" else float("nan") for row in rows]
            for name in rows[0] if name == "truth" or "@B" in name}


def read_archs(path: Path) -> list[str]:
    """The ``arch`` column of a scores.csv, in its row order."""
    with path.open(newline="") as handle:
        return [row["arch"] for row in csv.DictReader(handle)]


def aligned(columns: Columns, archs: list[str], order: list[str], path: Path) -> Columns:
    """``columns`` (rows in ``archs`` order) reordered to ``order``; refused unless both hold
    the same candidates."""
    if sorted(archs) != sorted(order):
        raise SpeedyNASError(f"{path} scores other candidates ({len(archs)} archs, "
                             f"{len(set(archs) ^ set(order))} not shared); --against needs "
                             "the same")
    row = {arch: i for i, arch in enumerate(archs)}
    return {name: [values[row[arch]] for arch in order] for name, values in columns.items()}


def shown_interval(interval: Sequence[float] | None, signed: bool) -> str:
    """An interval as printed, ``[low, high]`` to 3 decimals (``signed``: with a sign), or n/a."""
    form = "{:+.3f}" if signed else "{:.3f}"
    return "[" + ", ".join(map(form.format, interval)) + "]" if interval else "n/a"


def spearman(scores: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman of ``scores`` with ``truth`` (no interval)."""
    return rank_metrics(scores, truth, resamples=0)["spearman"]


def paired_spearman(scores: Sequence[float], base: Sequence[float],
                    truth: Sequence[float]) -> tuple[float, float, str]:
    """Spearman of ``scores`` and of ``base`` against ``truth``, and their paired difference's
    95 % interval as printed."""
    interval = difference_interval("spearman", scores, base, truth)
    return spearman(scores, truth), spearman(base, truth), shown_interval(interval, signed=True)


def estimator_names(columns: Columns, suffix: str, estimators: list[str] | None) -> list[str]:
    """``estimators``, or every estimator with a column at ``suffix``."""
    return estimators or [c[: -len(suffix)] for c in columns if c.endswith(suffix)]


def refuse_missing(columns: Columns, names: list[str], suffix: str,
                   path: Path | None = None) -> None:
    """Refuse, naming the first of ``names`` without a column at ``suffix`` (and the file)."""
    missing = [n for n in names if n + suffix not in columns]
    if missing:
        known = sorted({c.split("@B")[0] for c in columns if "@B" in c})
        where = f" in {path}" if path else ""
        raise SpeedyNASError(f"no column {missing[0]}{suffix}{where}; "
                             f"estimators: {', '.join(known)}")


def difference_table(columns: Columns, baseline: str, budget: int,
                     estimators: list[str] | None) -> str:
    """Markdown rows: Spearman of each estimator, of the baseline, and their paired difference."""
    suffix = f"@B{budget}"
    names = estimator_names(columns, suffix, estimators)
    refuse_missing(columns, [baseline, *names], suffix)
    truth, base = columns["truth"], columns[baseline + suffix]
    base_rho = spearman(base, truth)
    lines = [f"| estimator | Spearman B={budget} | minus {baseline} ({base_rho:.3f}) | "
             "paired 95 % interval |", "|---|---|---|---|"]
    for name in names:
        if name == baseline:
            continue
        rho, _, shown = paired_spearman(columns[name + suffix], base, truth)
        lines.append(f"| {name} | {rho:.3f} | {rho - base_rho:+.3f} | {shown} |")
    return "\n".join(lines)


def against_table(columns: Columns, other: Columns, budget: int,
                  estimators: list[str] | None) -> str:
    """Markdown rows: each estimator's Spearman here, in ``other`` (the same candidates in the
    same order) and their paired difference."""
    suffix = f"@B{budget}"
    names = estimators or [c[: -len(suffix)] for c in columns
                           if c.endswith(suffix) and c in other]
    missing = [n for n in names if n + suffix not in columns or n + suffix not in other]
    if missing or not names:
        raise SpeedyNASError(f"no column {(missing or ['any'])[0]}{suffix} in both files")
    truth = columns["truth"]
    lines = [f"| estimator | Spearman B={budget} | against | difference | paired 95 % interval |",
             "|---|---|---|---|---|"]
    for name in names:
        rho, base_rho, shown = paired_spearman(columns[name + suffix], other[name + suffix], truth)
        lines.append(f"| {name} | {rho:.3f} | {base_rho:.3f} | {rho - base_rho:+.3f} | {shown} |")
    return "\n".join(lines)


def pooled_table(sets: list[Columns], paths: list[Path], baseline: str, budget: int,
                 estimators: list[str] | None) -> str:
    """Markdown rows over several candidate draws: each estimator's Spearman per draw, the
    mean with its stratified interval, and the mean paired difference with the baseline."""
    suffix = f"@B{budget}"
    names = estimator_names(sets[0], suffix, estimators)
    for columns, path in zip(sets, paths):
        refuse_missing(columns, [baseline, *names], suffix, path)
    bases = [spearman(columns[baseline + suffix], columns["truth"]) for columns in sets]
    lines = [f"| estimator | Spearman B={budget} per draw | mean | 95 % interval | "
             f"minus {baseline} ({' / '.join(f'{b:.3f}' for b in bases)}) per draw | mean | "
             "paired 95 % interval |", "|---" * 7 + "|"]
    for name in names:
        if name == baseline:
            continue
        rhos = [spearman(columns[name + suffix], columns["truth"]) for columns in sets]
        diffs = [rho - base for rho, base in zip(rhos, bases)]
        alone = pooled_interval("spearman", [(c[name + suffix], None, c["truth"]) for c in sets])
        paired = pooled_interval("spearman", [(c[name + suffix], c[baseline + suffix], c["truth"])
                                              for c in sets])
        lines.append(f"| {name} | {' / '.join(f'{r:.3f}' for r in rhos)} | "
                     f"{sum(rhos) / len(rhos):.3f} | {shown_interval(alone, signed=False)} | "
                     f"{' / '.join(f'{d:+.3f}' for d in diffs)} | {sum(diffs) / len(diffs):+.3f} | "
                     f"{shown_interval(paired, signed=True)} |")
    return "\n".join(lines)


def paired_difference_report(scores: Sequence[Path], baseline: str = "params", budget: int = 100,
                             estimators: list[str] | None = None, against: Path | None = None,
                             pool: bool = False) -> str:
    """One Markdown table per scores.csv (each estimator minus ``baseline``, or minus itself in
    the ``against`` search), or with ``pool`` one table over all of them as candidate draws."""
    if pool and against:
        raise SpeedyNASError("--pool and --against do not go together")
    for path in [*scores, *([against] if against else [])]:
        if not path.is_file():
            raise SpeedyNASError(f"{path} is not a file")
    paths = list(scores)
    if pool:
        return (f"## {len(paths)} candidate draws: {', '.join(map(str, paths))}\n\n"
                + pooled_table([read_columns(p) for p in paths], paths, baseline, budget,
                               estimators) + "\n")
    sections = []
    for path in paths:
        columns = read_columns(path)
        if against:
            other = aligned(read_columns(against), read_archs(against), read_archs(path), against)
            sections.append(f"## {path} against {against}\n\n"
                            + against_table(columns, other, budget, estimators) + "\n")
        else:
            sections.append(f"## {path}\n\n"
                            + difference_table(columns, baseline, budget, estimators) + "\n")
    return "\n".join(sections)


# --- the choice of a rank combination (tuning searches) -------------------------------------

COMBO_MEMBERS = ["tse", "tse_e", "sovl", "valacc_inherited", "params", "synflow", "jacov",
                 "nwot", "snip", "grad_norm"]
COMBO_METRICS = ("spearman", "kendall", "kendall_top", "precision_top", "top1", "top10")

#: One combination's row: its name, its number of members and its metrics.
ComboRow = tuple[str, int, dict[str, float]]


def search_metrics(search_dir: Path, members: list[str], budget: int | None,
                   max_members: int) -> tuple[str, dict[str, tuple[int, dict[str, Any]]]]:
    """A description of the finished search in ``search_dir`` and, per combination name of up
    to ``max_members`` of ``members``, its size and metrics at ``budget`` (default: the
    search's largest B)."""
    summary = json.loads((search_dir / "summary.json").read_text())
    space = search_spaces.create(summary["settings"]["space"])
    cfg = load_config(SearchConfig, search_dir / "config.yaml", context={"space": space.name})
    at = str(budget or max(cfg.finetune.budgets))
    results = read_jsonl(search_dir / "results.jsonl")
    truth = cfg.ground_truth.create(space)
    if truth is None:
        raise SpeedyNASError(f"{search_dir} was searched without ground truth")
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
            for key in COMBO_METRICS}


def combo_rows(search_dirs: Sequence[Path], members: list[str], budget: int | None = None,
               max_members: int = 4, by: str = "spearman") -> tuple[list[str], list[ComboRow]]:
    """The searches' descriptions and every combination's metrics (means over the searches),
    best by ``by`` first."""
    searches = [search_metrics(d, members, budget, max_members) for d in search_dirs]
    names = list(searches[0][1])
    rows = [(name, searches[0][1][name][0],
             mean_metrics([metrics[name][1] for _, metrics in searches])) for name in names]
    rows.sort(key=lambda row: -np.nan_to_num(row[2][by], nan=-1e9))
    return [description for description, _ in searches], rows


def combo_report(search_dirs: Sequence[Path], members: list[str], budget: int | None = None,
                 max_members: int = 4, show: int = 15, by: str = "spearman") -> str:
    """A text table of the best ``show`` combinations by ``by`` (and every member alone)."""
    descriptions, rows = combo_rows(search_dirs, members, budget, max_members, by)
    lines = [*descriptions, f"sorted by {by}" + (f", means over {len(descriptions)} searches"
                                                 if len(descriptions) > 1 else ""),
             f"{'estimator':58s} Spearman  Kendall  Kendall-top  precision-top  top-1  top-10"]
    for name, _, m in rows[:show] + [row for row in rows[show:] if row[1] == 1]:
        lines.append(f"{name:58s} {m['spearman']:8.3f} {m['kendall']:8.3f} "
                     f"{m['kendall_top']:12.3f} {m['precision_top']:14.3f} {m['top1']:6.2f} "
                     f"{m['top10']:7.2f}")
    return "\n".join(lines)


# --- two searches' records, timings aside ---------------------------------------------------


def strip_timings(value: Any) -> Any:
    """``value`` without its timing fields (``*seconds``, ``processes``), at any depth."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items()
                if not (k.endswith("seconds") or k == "processes")}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def compare_records(a: Path, b: Path) -> tuple[int, int, int]:
    """The record counts of two ``results.jsonl`` and how many of ``b``'s records are
    identical, timings aside, to ``a``'s record of the same index."""
    first, second = ({r["index"]: strip_timings(r) for r in read_jsonl(path)} for path in (a, b))
    same = sum(first.get(index) == record for index, record in second.items())
    return len(first), len(second), same
