"""``prior``: a learned model's ranking shrunk towards a label-free prior's.

With few labels a tree model ranks worse than the best training-free signal alone (on NB201,
boosted trees from 20 labels 0.88 against MeCo's 0.92: ``results/predictors``), and with many
it ranks better. This predictor keeps both: one feature column (``prior``, larger = better,
e.g. a zero-cost proxy or a rank combination of them) is the prior; the inner model
(``model``) is fitted on all the features; the rows predicted together are ordered by

    w * rank(prior) + (1 - w) * rank(inner mean),   w = pseudo_labels / (pseudo_labels + n)

where n is the number of labels fitted on, so the prior counts as ``pseudo_labels`` labels and
fades as labels come in (the weight's form, and 40, chosen on the tuning draw of
``experiments/predictors.py``). The predicted means are the inner model's values, sorted and
handed out in that order, so they stay on the label's scale (an acquisition compares them with
the best label); each row's standard deviation is the inner model's. Ranks are taken over the
rows predicted together: predict every candidate in one call.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from scipy.stats import rankdata

from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option

from .base import Predictor, create_predictor, register_predictor
from .trees import Seed

__all__ = ["PriorBlend"]


@register_predictor("prior")
class PriorBlend(Predictor):
    """The inner model's ranking blended with a prior column's; see the module docstring."""

    def __init__(self, model: Annotated[str, Option(help="the inner predictor: gbt, rf or "
                                                         "ensemble")] = "gbt",
                 prior: Annotated[int, Option(min=0, help="the feature column that is the "
                                                          "prior (larger = better)")] = 0,
                 pseudo_labels: Annotated[float, Option(
                     min=0, help="how many labels the prior counts as")] = 40.0,
                 seed: Seed = 0) -> None:
        if model == self.name:
            raise SpeedyNASError("predictor 'prior': option 'model' must be another predictor "
                                 "(gbt, rf or ensemble), not 'prior'")
        self.inner = create_predictor(model, seed=seed)
        self.prior, self.pseudo_labels = prior, float(pseudo_labels)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.prior >= x.shape[1]:
            raise SpeedyNASError(f"predictor 'prior': option 'prior' is column {self.prior}, but "
                                 f"the features have {x.shape[1]} columns")
        self.inner.fit(x, y)
        self.weight = self.pseudo_labels / (self.pseudo_labels + len(y))

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inner = self.inner.predict(x)
        blended = (self.weight * rankdata(x[:, self.prior])
                   + (1 - self.weight) * rankdata(inner.mean))
        mean = np.empty(len(x))
        mean[np.argsort(blended, kind="stable")] = np.sort(inner.mean)
        return mean, inner.std
