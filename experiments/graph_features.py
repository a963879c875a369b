"""How much NB201 graph features say about accuracy: the Spearman of each feature of
``SearchSpace.graph_features`` with a column of the shipped table over all 15,625 cells, and of a
random forest on them fitted on N labelled cells (seeds 1-5; the one-hot encoding as baseline).

    python experiments/graph_features.py [--labels 20 50 100] [--out results/graph_features]

Writes ``features.csv`` (one row per feature) and ``forest.csv`` (one row per features x labels x
seed) and prints both summaries; the forest's mean over seeds comes with a bootstrap 95 %
interval over the seeds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap, spearmanr
from sklearn.ensemble import RandomForestRegressor

import search_spaces
from speedynas_core.atomic_io import atomic_write_csv
from speedynas_core.cli import positive_int, run_cli

SEEDS = (1, 2, 3, 4, 5)


def forest_spearman(x: np.ndarray, y: np.ndarray, labels: int, seed: int) -> float:
    """Spearman on the unlabelled cells of a 100-tree forest fitted on ``labels`` random ones."""
    rng = np.random.default_rng(seed)
    train = rng.choice(len(y), size=labels, replace=False)
    test = np.setdiff1d(np.arange(len(y)), train)
    model = RandomForestRegressor(n_estimators=100, random_state=seed).fit(x[train], y[train])
    return float(spearmanr(model.predict(x[test]), y[test]).statistic)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=positive_int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--column", default="cifar10_test")
    parser.add_argument("--out", type=Path, default=Path("results/graph_features"))
    args = parser.parse_args(argv)
    space = search_spaces.create("nb201")
    archs = list(space.enumerate())
    y = np.array(space.ground_truth(args.column).lookup_many(archs), dtype=float)
    features = [space.graph_features(a) for a in archs]
    keys = list(features[0])
    inputs = {"graph features": np.array([[f[k] for k in keys] for f in features]),
              "one-hot encoding": np.array([space.encode(a) for a in archs])}
    per_feature = [{"feature": k,
                    "spearman": f"{spearmanr(inputs['graph features'][:, j], y).statistic:.3f}"}
                   for j, k in enumerate(keys)]
    runs = [{"inputs": name, "labels": n, "seed": seed,
             "spearman": f"{forest_spearman(x, y, n, seed):.4f}"}
            for name, x in inputs.items() for n in args.labels for seed in SEEDS]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(args.out / "features.csv", per_feature)
    atomic_write_csv(args.out / "forest.csv", runs)
    print(f"Spearman with {args.column} over all {len(y):,} cells:")
    for row in per_feature:
        print(f"  {row['feature']:22s} {row['spearman']}")
    print(f"random forest, Spearman on the unlabelled cells, mean over seeds {SEEDS} [95 %]:")
    for name in inputs:
        for n in args.labels:
            values = [float(r["spearman"]) for r in runs
                      if r["inputs"] == name and r["labels"] == n]
            low, high = bootstrap((values,), np.mean, n_resamples=10_000,
                                  random_state=0).confidence_interval
            print(f"  {name:16s} {n:4d} labels: {np.mean(values):.3f} [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    run_cli(main)
