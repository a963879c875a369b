"""Performance predictors: fitted on labelled archs' cheap features, they predict a mean and an
uncertainty for any others (:mod:`.base`); tree models (:mod:`.trees`), a bootstrap ensemble
(:mod:`.ensemble`), a learned ranking shrunk towards a label-free prior (:mod:`.prior`) and
the acquisition functions that choose what to label next (:mod:`.acquisition`). Only numpy, scipy and scikit-learn below; no arch, space or network here.

>>> import numpy as np
>>> from speedynas_predictors import create_predictor
>>> x = np.arange(20.0).reshape(-1, 1)
>>> prediction = create_predictor("rf", seed=0).fit(x, 2 * x[:, 0]).predict([[5.0]])
>>> bool(abs(prediction.mean[0] - 10) < 2)
True
"""
from __future__ import annotations

from .acquisition import ACQUISITIONS, Acquisition, acquisition_values
from .base import (PREDICTORS, Prediction, Predictor, create_predictor, feature_matrix,
                   register_predictor)

# Importing the modules registers the built-in predictors.
from . import ensemble, prior, trees  # noqa: E402,F401  isort: skip

__all__ = ["ACQUISITIONS", "Acquisition", "PREDICTORS", "Prediction", "Predictor",
           "acquisition_values", "create_predictor", "feature_matrix", "register_predictor"]
