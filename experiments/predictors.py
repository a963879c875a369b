"""Learned predictors and the training-free rank combination on NB201, against the issue's goals.

    python experiments/predictors.py --report SEARCH_DIR --tuning SEARCH_DIR
        [--fit-sizes 20 50 100] [--seeds 10] [--out results/predictors]

Each SEARCH_DIR is a zero-cost search of a uniform draw of NB201 cells (``results.jsonl``:
every proxy measured on the freshly initialised C=16, N=5 network, params and FLOPs); the
product computes every signal: the proxies (the search), the graph features and the one-hot
encoding (the space). The tuning draw chooses what is chosen (the training-free combination's
members, greedily, and the sign of each graph feature); the report draw is where every figure
is measured. The rank mean of the members chosen so is one more feature (``rank mean``).

Learned predictors (``speedynas_predictors``: gbt, rf, ensemble, default settings, never tuned):
for each feature set, fit size n and seed s in 1..``--seeds``, fit on n cells of the report draw
drawn with seed s and score the other cells: Spearman, Kendall tau-b and Kendall within the
true top 10 % of them (:func:`speedynas_search.metrics.rank_metrics`), for the test accuracy
(``cifar10_test``) and for the accuracy under PGD at eps 1/255 (``nb201_robustness``).
Means over seeds with bootstrap 95 % intervals go to ``OUT/learned.md``, every fit to
``OUT/learned.csv``; each signal's own Spearman over the draw to ``OUT/signals.md``; the
training-free combination to ``OUT/training_free.md``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from estimators.combo import set_ranks
from search_spaces import create_ground_truth
from speedynas_core.atomic_io import atomic_write_csv, atomic_write_text
from speedynas_core.cli import positive_int, run_cli
from speedynas_predictors import create_predictor
from speedynas_search.metrics import mean_interval, rank_metrics
from speedynas_search.signals import Signals, search_signals

REPO = Path(__file__).resolve().parents[1]
MODELS = ("gbt", "rf", "ensemble")
#: The rank-mean set also gets the learned ranking shrunk towards the rank mean (column 0).
PRIOR_MODELS = (*MODELS, "prior")
TARGETS = {"test accuracy": ("nb201", "cifar10_test"),
           "PGD eps 1/255 accuracy": ("nb201_robustness", "pgd@Linf_eps-1.0")}
GOALS = {20: 0.90, 50: 0.94, 100: 0.96}


def load_draw(search: Path) -> Signals:
    """The signals of a zero-cost search's cells (:mod:`speedynas_search.signals`)."""
    return search_signals(search, search_spaces.create("nb201"))


def reachable(draw: Signals) -> np.ndarray:
    """The cells without unreachable ops (the 9,445 of 15,625 NAS-Bench-Suite-Zero keeps)."""
    return draw.column("graph", "dead_edges") == 0


def targets(archs: Sequence[str]) -> dict[str, np.ndarray]:
    """Each target's value for ``archs`` from the shipped tables."""
    out = {}
    for name, (source, column) in TARGETS.items():
        truth = create_ground_truth(source, space="nb201", column=column)
        out[name] = np.array([truth.lookup(a) for a in archs], dtype=float)
    return out


FEATURE_SETS = {
    "zero-cost": ("zero_cost",),
    "graph": ("graph",),
    "zero-cost + size": ("zero_cost", "size"),
    "zero-cost + graph": ("zero_cost", "graph"),
    "zero-cost + graph + size": ("zero_cost", "graph", "size"),
    "zero-cost + graph + size + encoding": ("zero_cost", "graph", "size", "encoding"),
    "rank mean + graph": ("rank_mean", "graph"),
    "rank mean + zero-cost + graph + size": ("rank_mean", "zero_cost", "graph", "size"),
}


def held_out_metrics(x: np.ndarray, y: np.ndarray, connected: np.ndarray, model: str,
                     fit_size: int, seed: int) -> dict[str, Any]:
    """Fit ``model`` on ``fit_size`` cells drawn with ``seed``; metrics on the others (and
    Spearman on those of them without unreachable ops)."""
    rng = np.random.default_rng(seed)
    fit = rng.choice(len(y), size=fit_size, replace=False)
    rest = np.setdiff1d(np.arange(len(y)), fit)
    predicted = create_predictor(model, seed=seed).fit(x[fit], y[fit]).predict(x[rest]).mean
    metrics = rank_metrics(predicted, y[rest], ks=(), resamples=0)
    kept = connected[rest]
    return {**{k: metrics[k] for k in ("spearman", "kendall", "kendall_top")},
            "spearman_reachable": rank_metrics(predicted[kept], y[rest][kept], ks=(),
                                               resamples=0)["spearman"]}


def learned_runs(draw: Signals, truth: dict[str, np.ndarray], fit_sizes: Sequence[int],
                 seeds: Sequence[int]) -> list[dict[str, Any]]:
    """One row per (target, feature set, model, fit size, seed)."""
    rows = []
    for target, y in truth.items():
        sets = FEATURE_SETS if target == "test accuracy" else {
            k: v for k, v in FEATURE_SETS.items() if k in ("zero-cost + graph + size",
                                                            "graph", "zero-cost")}
        for name, blocks in sets.items():
            x = draw.matrix(blocks)
            models = {"zero-cost + graph + size": MODELS,
                      "rank mean + zero-cost + graph + size": PRIOR_MODELS}.get(name, ("gbt",))
            for model in models:
                for fit_size in fit_sizes:
                    for seed in seeds:
                        rows.append({"target": target, "features": name, "model": model,
                                     "fit_size": fit_size, "seed": seed,
                                     **held_out_metrics(x, y, reachable(draw), model, fit_size,
                                                         seed)})
                print(f"{target}: {name}, {model} done", flush=True)
    return rows


def _cell(values: Sequence[float]) -> str:
    mean, low, high = mean_interval(values)
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def learned_table(rows: list[dict[str, Any]], fit_sizes: Sequence[int]) -> str:
    """Markdown: per target and metric, mean [95 % interval] per feature set/model and size."""
    lines = []
    for target in dict.fromkeys(r["target"] for r in rows):
        for metric in ("spearman", "kendall", "kendall_top", "spearman_reachable"):
            lines += [f"### {target}: {metric}", "",
                      "| features | model | " + " | ".join(f"{n} labels" for n in fit_sizes)
                      + " |", "|---|---|" + "---|" * len(fit_sizes)]
            mine = [r for r in rows if r["target"] == target]
            for key in dict.fromkeys((r["features"], r["model"]) for r in mine):
                cells = [_cell([r[metric] for r in mine if (r["features"], r["model"]) == key
                                and r["fit_size"] == n]) for n in fit_sizes]
                lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
            if target == "test accuracy" and metric == "spearman":
                lines.append("| goal (issue) | | " + " | ".join(
                    f"{GOALS.get(n, float('nan')):.2f}" for n in fit_sizes) + " |")
            lines.append("")
    return "\n".join(lines)


def _spearman_cell(scores: np.ndarray, y: np.ndarray) -> str:
    m = rank_metrics(scores, y, ks=())
    return f"{m['spearman']:.3f} [{m['spearman_ci'][0]:.3f}, {m['spearman_ci'][1]:.3f}]"


def signals_table(draw: Signals, truth: dict[str, np.ndarray]) -> str:
    """Each zero-cost and size signal's Spearman [95 %] with each target over the draw (and
    the test accuracy over the cells without unreachable ops)."""
    test = truth["test accuracy"]
    lines = ["| signal | " + " | ".join(truth) + " | test accuracy, cells without unreachable "
             "ops |", "|---|" + "---|" * (len(truth) + 1)]
    for block in ("zero_cost", "size"):
        names, values = draw.blocks[block]
        for j, name in enumerate(names):
            cells = [_spearman_cell(values[:, j], y) for y in truth.values()]
            cells.append(_spearman_cell(values[reachable(draw), j], test[reachable(draw)]))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ranks(values: np.ndarray) -> np.ndarray:
    """Set ranks of each column (non-finite last), as a rank combination ranks its members."""
    return np.column_stack([set_ranks(c) for c in values.T])


def greedy_members(ranks: np.ndarray, y: np.ndarray, names: list[str],
                   most: int = 6) -> list[str]:
    """Forward selection of the rank mean's members on the tuning draw (by Spearman), stopping
    when no member adds."""
    chosen: list[int] = []
    best = -np.inf
    while len(chosen) < most:
        scored = [(rank_metrics(ranks[:, chosen + [j]].mean(axis=1), y, ks=(),
                                resamples=0)["spearman"], j)
                  for j in range(len(names)) if j not in chosen]
        rho, j = max(scored)
        if rho <= best:
            break
        best, chosen = rho, chosen + [j]
    return [names[j] for j in chosen]


def signal_pool(draw: Signals, with_graph: bool, tuning: Signals | None = None,
                y_tuning: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """The label-free signals: every proxy and size (larger = better by their definitions)
    and, ``with_graph``, every graph feature signed as it correlates on the tuning draw."""
    names = draw.blocks["zero_cost"][0] + draw.blocks["size"][0]
    values = np.column_stack([draw.blocks["zero_cost"][1], draw.blocks["size"][1]])
    if with_graph:
        graph_names, graph = draw.blocks["graph"]
        tuned = tuning.blocks["graph"][1]
        signs = [np.sign(rank_metrics(tuned[:, j], y_tuning, ks=(), resamples=0)["spearman"]
                         or 1.0) for j in range(len(graph_names))]
        names = names + [f"{'' if s > 0 else '-'}{n}" for n, s in zip(graph_names, signs)]
        values = np.column_stack([values, graph * np.array(signs)])
    return names, values


def training_free(report: Signals, tuning: Signals, y_report: np.ndarray,
                  y_tuning: np.ndarray) -> tuple[str, np.ndarray]:
    """The rank mean chosen on the tuning draw, scored on the report draw; the table and the
    report draw's rank mean of the proxies and size chosen so."""
    lines = ["| signals | chosen on the tuning draw | Spearman on the report draw [95 %] | "
             "Kendall [95 %] | Spearman, cells without unreachable ops [95 %] |",
             "|---|---|---|---|---|"]
    for with_graph in (False, True):
        tune_names, tune_values = signal_pool(tuning, with_graph, tuning, y_tuning)
        members = greedy_members(_ranks(tune_values), y_tuning, tune_names)
        names, values = signal_pool(report, with_graph, tuning, y_tuning)
        columns = [names.index(m) for m in members]
        combined = _ranks(values[:, columns]).mean(axis=1)
        if not with_graph:
            proxies_only = combined
        m = rank_metrics(combined, y_report, ks=())
        kept = reachable(report)
        kept_cell = _spearman_cell(combined[kept], y_report[kept])
        label = "proxies + size" + (" + graph features (signs from the tuning draw)"
                                    if with_graph else "")
        lines.append(f"| {label} | {' + '.join(members)} | {m['spearman']:.3f} "
                     f"[{m['spearman_ci'][0]:.3f}, {m['spearman_ci'][1]:.3f}] | "
                     f"{m['kendall']:.3f} [{m['kendall_ci'][0]:.3f}, {m['kendall_ci'][1]:.3f}] | "
                     f"{kept_cell} |")
    return "\n".join(lines) + "\n", proxies_only


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True, help="search dir: report draw")
    parser.add_argument("--tuning", type=Path, required=True, help="search dir: tuning draw")
    parser.add_argument("--fit-sizes", nargs="+", type=positive_int, default=[20, 50, 100])
    parser.add_argument("--seeds", type=positive_int, default=10, help="report seeds 1..N")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "predictors")
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    report, tuning = load_draw(args.report), load_draw(args.tuning)
    truth, truth_tuning = targets(report.archs), targets(tuning.archs)
    args.out.mkdir(parents=True, exist_ok=True)
    signals = signals_table(report, truth)
    free, rank_mean = training_free(report, tuning, truth["test accuracy"],
                                    truth_tuning["test accuracy"])
    report.blocks["rank_mean"] = (["rank mean"], rank_mean[:, None])
    rows = learned_runs(report, truth, args.fit_sizes, range(1, args.seeds + 1))
    header = (f"Command: `{command}`\n\nReport draw: {len(report.archs)} cells "
              f"({args.report.name}); tuning draw: {len(tuning.archs)} cells "
              f"({args.tuning.name}).\n\n")
    atomic_write_text(args.out / "signals.md", header + signals)
    atomic_write_text(args.out / "training_free.md", header + free)
    atomic_write_text(args.out / "learned.md", header + learned_table(rows, args.fit_sizes))
    atomic_write_csv(args.out / "learned.csv", rows)
    print(signals, free, learned_table(rows, args.fit_sizes), sep="\n")


if __name__ == "__main__":
    run_cli(main)
