"""``ensemble``: boosted-tree models fitted on bootstrap resamples of the labels; the mean of
their predictions is the prediction and their spread the uncertainty (the deep-ensemble idea of
Lakshminarayanan et al., NeurIPS 2017, with the trees White et al. 2021 found strongest at few
labels; BANANAS, White, Neiswanger, Savani, AAAI 2021, ensembles neural predictors the same
way)."""
from __future__ import annotations

from typing import Annotated

import numpy as np

from speedynas_core.plugins import Option

from .base import Predictor, register_predictor
from .trees import Seed, Trees

__all__ = ["BootstrapEnsemble"]


@register_predictor("ensemble")
class BootstrapEnsemble(Predictor):
    """``members`` boosted-tree models on bootstrap resamples; spread = uncertainty."""

    def __init__(self, members: Annotated[int, Option(min=2, help="models in the "
                                                                  "ensemble")] = 10,
                 trees: Trees = 100, seed: Seed = 0) -> None:
        self.members, self.trees, self.seed = members, trees, seed

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import GradientBoostingRegressor  # imported when first fitted

        rng = np.random.default_rng(self.seed)
        self._models = []
        for member in range(self.members):
            rows = rng.integers(0, len(y), size=len(y))
            model = GradientBoostingRegressor(n_estimators=self.trees,
                                              random_state=self.seed + member)
            self._models.append(model.fit(x[rows], y[rows]))

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_member = np.stack([model.predict(x) for model in self._models])
        return per_member.mean(axis=0), per_member.std(axis=0)
