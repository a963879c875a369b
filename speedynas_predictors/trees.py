"""Tree models (scikit-learn): gradient-boosted trees and a random forest.

- ``gbt``: scikit-learn's ``GradientBoostingRegressor`` (Friedman 2001) on squared error for the
  mean; its uncertainty is half the gap between two more boosted models fitted on the 16 % and
  84 % quantiles (pinball loss), i.e. one standard deviation of a normal. Why scikit-learn's and
  not XGBoost's: ``benchmarks/predictor_models.py`` measures both on the same features and
  labels (results/predictors/NOTES.md).
- ``rf``: ``RandomForestRegressor`` (Breiman 2001); uncertainty = the standard deviation of
  the trees' predictions (as in BANANAS' and White et al.'s predictor comparisons).
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from speedynas_core.plugins import Option

from .base import Predictor, register_predictor

__all__ = ["BoostedTrees", "RandomForest"]

Seed = Annotated[int, Option(min=0, help="seed of the model's randomness")]
Trees = Annotated[int, Option(min=1, help="number of trees (boosting stages)")]


@register_predictor("gbt")
class BoostedTrees(Predictor):
    """Gradient-boosted trees; uncertainty from 16 %/84 % quantile models."""

    def __init__(self, trees: Trees = 100, seed: Seed = 0) -> None:
        self.trees, self.seed = trees, seed

    def _model(self, **loss: object) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor  # imported when first fitted

        return GradientBoostingRegressor(n_estimators=self.trees, random_state=self.seed, **loss)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._mean = self._model().fit(x, y)
        self._low = self._model(loss="quantile", alpha=0.16).fit(x, y)
        self._high = self._model(loss="quantile", alpha=0.84).fit(x, y)

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._mean.predict(x), (self._high.predict(x) - self._low.predict(x)) / 2


@register_predictor("rf")
class RandomForest(Predictor):
    """Random forest; uncertainty = spread of its trees."""

    def __init__(self, trees: Trees = 100, seed: Seed = 0) -> None:
        self.trees, self.seed = trees, seed

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor  # imported when first fitted

        self._forest = RandomForestRegressor(n_estimators=self.trees,
                                             random_state=self.seed).fit(x, y)

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = np.stack([tree.predict(x) for tree in self._forest.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
