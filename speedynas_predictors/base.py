"""The predictor interface: fit on labelled archs' features, predict a mean and an uncertainty.

A predictor maps a feature matrix (one row per arch: any cheap signals, e.g. zero-cost proxies,
graph features, TSE) to a label (whatever the user trusts: a benchmark table's accuracy, a
retrained arch's accuracy, a column of a user's CSV). :meth:`Predictor.predict` returns a
:class:`Prediction`: the mean and a standard deviation per row, the spread an acquisition
function (:mod:`speedynas_predictors.acquisition`) trades against the mean. Predictors are
plugins: ``create_predictor("rf", seed=1)``; their options are their factories' keyword
parameters.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from speedynas_core.errors import SpeedyNASError
from speedynas_core.registry import Registry, create_checked

__all__ = ["PREDICTORS", "Prediction", "Predictor", "create_predictor", "feature_matrix",
           "register_predictor"]


class Prediction(NamedTuple):
    """Per row: the predicted label and its standard deviation (the model's uncertainty)."""

    mean: np.ndarray
    std: np.ndarray


class Predictor(ABC):
    """Fits features to labels; predicts a mean and an uncertainty for any rows."""

    name: str = ""

    def fit(self, features: np.ndarray, labels: np.ndarray) -> Predictor:
        """Fit on ``features`` (n x d) and ``labels`` (n); returns ``self``."""
        x, y = feature_matrix(features), np.asarray(labels, dtype=float).reshape(-1)
        if len(x) != len(y):
            raise SpeedyNASError(f"predictor {self.name!r}: {len(x)} feature rows for "
                                 f"{len(y)} labels")
        if len(y) < 2 or not np.isfinite(y).all():
            raise SpeedyNASError(f"predictor {self.name!r} needs at least 2 finite labels, got "
                                 f"{int(np.isfinite(y).sum())} of {len(y)}")
        self.width = x.shape[1]
        self._fit(x, y)
        return self

    def predict(self, features: np.ndarray) -> Prediction:
        """The mean and standard deviation predicted for each row of ``features``."""
        if not hasattr(self, "width"):
            raise SpeedyNASError(f"predictor {self.name!r} predicts only after fit")
        x = feature_matrix(features)
        if x.shape[1] != self.width:
            raise SpeedyNASError(f"predictor {self.name!r} was fitted on {self.width} features "
                                 f"but is given {x.shape[1]}")
        mean, std = self._predict(x)
        return Prediction(np.asarray(mean, dtype=float), np.maximum(np.asarray(std, float), 0))

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit the model (inputs checked)."""

    @abstractmethod
    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per row (inputs checked)."""


#: Columns reaching this magnitude (synflow reaches 1e40 on deep cells) are put on a signed log
#: scale, an order-preserving map that keeps them within the float32 range the trees use.
HUGE = 1e30


def feature_matrix(features: Any) -> np.ndarray:
    """``features`` as a float matrix; a column with values beyond :data:`HUGE` on a signed
    log scale; non-finite values (a proxy undefined for an arch) replaced by the smallest
    finite value of their column minus one, i.e. ranked last."""
    x = np.array(features, dtype=float, ndmin=2)
    if x.ndim != 2:
        raise SpeedyNASError(f"predictor features must be a matrix (rows x features), got "
                             f"shape {x.shape}")
    for column in x.T:
        bad = ~np.isfinite(column)
        finite = column[~bad]
        if finite.size and np.abs(finite).max() >= HUGE:
            column[~bad] = np.sign(finite) * np.log1p(np.abs(finite))
            finite = column[~bad]
        if bad.any():
            column[bad] = finite.min() - 1 if finite.size else 0.0
    return x


PREDICTORS: Registry[Predictor] = Registry("predictor")


def register_predictor(name: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator registering a :class:`Predictor` subclass as ``name``."""

    def decorate(cls: type[Predictor]) -> type[Predictor]:
        cls.name = name
        PREDICTORS.register(name)(cls)
        return cls

    return decorate


def create_predictor(name: str, **options: Any) -> Predictor:
    """The predictor registered as ``name`` with ``options``; bad names and options named."""
    return create_checked(PREDICTORS, name, options)
