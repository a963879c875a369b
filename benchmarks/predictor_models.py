"""Boosted trees for the predictor layer: scikit-learn's two against XGBoost, same data.

    python benchmarks/predictor_models.py --search SEARCH_DIR [--fit-sizes 20 50 100]
        [--seeds 10]

On a zero-cost search's cells (the features of ``experiments/predictors.py``: zero-cost
proxies, params/FLOPs and graph features), fit each model on n cells (seeds 1..N) and print the
Spearman on the other cells (mean over seeds) and the seconds per fit (median), in one run:
scikit-learn's ``GradientBoostingRegressor`` (what ``speedynas_predictors``' ``gbt`` uses),
scikit-learn's ``HistGradientBoostingRegressor`` and, when installed (``pip install xgboost``;
not a dependency of the package), ``xgboost.XGBRegressor``, each with its default settings.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

import search_spaces
from search_spaces import create_ground_truth
from speedynas_predictors import feature_matrix
from speedynas_search.signals import search_signals


def models() -> dict[str, Callable[[int], Any]]:
    """Model name -> factory of a seeded regressor with default settings."""
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    found: dict[str, Callable[[int], Any]] = {
        "sklearn GradientBoostingRegressor": lambda s: GradientBoostingRegressor(random_state=s),
        "sklearn HistGradientBoostingRegressor":
            lambda s: HistGradientBoostingRegressor(random_state=s)}
    if importlib.util.find_spec("xgboost") is not None:
        from xgboost import XGBRegressor

        found["xgboost XGBRegressor"] = lambda s: XGBRegressor(random_state=s, n_jobs=1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=Path, required=True)
    parser.add_argument("--fit-sizes", nargs="+", type=int, default=[20, 50, 100])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    draw = search_signals(args.search, search_spaces.create("nb201"))
    x = feature_matrix(draw.matrix(("zero_cost", "graph", "size")))  # as the predictors see it
    truth = create_ground_truth("nb201", space="nb201", column="cifar10_test")
    y = np.array([truth.lookup(a) for a in draw.archs])
    print(f"{len(y)} cells, {x.shape[1]} features; Spearman on the cells not fitted on "
          f"(mean over seeds 1..{args.seeds}), median seconds per fit")
    for name, make in models().items():
        for n in args.fit_sizes:
            rhos, seconds = [], []
            for seed in range(1, args.seeds + 1):
                fit = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
                rest = np.setdiff1d(np.arange(len(y)), fit)
                start = time.perf_counter()
                model = make(seed).fit(x[fit], y[fit])
                seconds.append(time.perf_counter() - start)
                rhos.append(spearmanr(model.predict(x[rest]), y[rest]).statistic)
            print(f"  {name:40s} {n:4d} labels: Spearman {np.mean(rhos):.3f}, "
                  f"{statistics.median(seconds):.3f} s per fit")


if __name__ == "__main__":
    main()
