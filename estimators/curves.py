"""Fine-tune curve estimators: the shape of the train-loss curve, and its extrapolation
(learning-curve extrapolation, LCE).

The curve is l_0 .. l_{B-1} (see :mod:`estimators.trajectory`) placed at x = b + 1, so the loss
of the B-th minibatch sits at x = B and "the loss at T steps" is the curve's value at x = T.
Minibatch noise is smoothed by means over chunks of consecutive steps aligned at B (the first
B mod chunk losses are dropped); a fitted model is compared with those chunk means exactly (the
model's mean over each chunk), so smoothing biases no fit.

=====================  =========================================================  ============
name                   score at budget B                                          options
=====================  =========================================================  ============
``curve_slope``        minus the least-squares line's slope over the last          ``window``,
                       ``window`` steps (loss per step; larger: falling faster)    ``chunk``
``curve_curvature``    minus the least-squares quadratic's second derivative       ``window``,
                       (loss per step squared; larger: the descent flattens less)  ``chunk``
``lce``                minus the loss at ``target`` steps predicted by a           ``family``,
                       parametric curve fitted to the B losses                     ``target``,
                                                                                   ``points``
``lce_learned``        TSE at ``target`` predicted from curve-prefix features by   ``target``,
                       support vector regression (joint: fitted on the set)        ``fit_size``,
                                                                                   ``seed``
=====================  =========================================================  ============

``lce`` families (Domhan, Springenberg and Hutter, "Speeding up automatic hyperparameter
optimization of deep neural networks by extrapolation of learning curves", IJCAI 2015), written
for a decreasing loss, with bounds that keep each one non-increasing and non-negative:
``pow3`` c + a x^-alpha, ``log_power`` a / (1 + (x / e^b)^c), ``exp3`` c + e^(b - a x),
``vapor_pressure`` e^(a + b / x + c ln x); ``ensemble`` is the mean prediction of those that
fitted. A fit fails when the optimiser gives up or its prediction is not finite; ``lce`` then
scores minus the last smoothed loss (a flat extrapolation, so the candidate keeps its place
among the others instead of dropping to the bottom); a curve holding NaN scores NaN.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Optional

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option

from .builtin import TSE
from .registry import Estimator, register_estimator
from .trajectory import Candidate, Trajectory

__all__ = ["FAMILIES", "chunk_means", "derivative", "extrapolate"]

Family = Literal["pow3", "log_power", "exp3", "vapor_pressure", "ensemble"]
#: Curve-fit evaluations allowed per family before the fit counts as failed.
MAX_EVALUATIONS = 1000
#: Smoothed losses among ``lce_learned``'s features (evenly spaced over the prefix).
LEVELS = 5
#: The fewest candidates ``lce_learned`` fits on.
MIN_FIT = 3


def _pow3(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c + a * x ** -alpha


def _log_power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a / (1.0 + (x / math.exp(b)) ** c)


def _exp3(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return c + np.exp(b - a * x)


def _vapor_pressure(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.exp(a + b / x + c * np.log(x))


def _pow3_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    c = 0.5 * max(y[-1], 0.0)
    return [c, max(y[0] - c, 1e-3) * x[0] ** 0.5, 0.5]


def _log_power_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    return [2.0 * max(y[-1], 1e-3), math.log(x[-1]), 1.0]  # half the start height at x[-1]


def _exp3_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    c, rate = 0.5 * max(y[-1], 0.0), 1.0 / (x[-1] - x[0] + 1.0)
    return [c, rate, math.log(max(y[0] - c, 1e-3)) + rate * x[0]]


def _vapor_pressure_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    first, last = math.log(max(y[0], 1e-6)), math.log(max(y[-1], 1e-6))
    power = min(0.0, (last - first) / max(math.log(x[-1] / x[0]), 1e-6))
    return [first - power * math.log(x[0]), 0.0, power]  # a pure power law through the ends


#: Family name -> (curve, starting parameters from the smoothed points, (lower, upper) bounds).
FAMILIES: dict[str, tuple[Callable[..., np.ndarray], Callable[..., list[float]],
                          tuple[list[float], list[float]]]] = {
    "pow3": (_pow3, _pow3_start, ([0, 0, 0], [np.inf, np.inf, 10])),
    "log_power": (_log_power, _log_power_start, ([0, -10, 0], [np.inf, 20, 10])),
    "exp3": (_exp3, _exp3_start, ([0, 0, -np.inf], [np.inf, np.inf, np.inf])),
    "vapor_pressure": (_vapor_pressure, _vapor_pressure_start,
                       ([-np.inf, 0, -np.inf], [np.inf, np.inf, 0])),
}


def chunk_means(losses: Sequence[float], chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps x = b + 1 of ``losses`` cut into chunks of ``chunk`` aligned at the end (the
    first len mod chunk dropped), one row per chunk, and each chunk's mean loss."""
    count = len(losses) // chunk
    start = len(losses) - count * chunk
    x = np.arange(start + 1, len(losses) + 1, dtype=float).reshape(count, chunk)
    return x, np.asarray(losses[start:], dtype=float).reshape(count, chunk).mean(axis=1)


def derivative(losses: Sequence[float], chunk: int, order: Literal[1, 2]) -> float:
    """The ``order``-th derivative (per step, per step squared) of the least-squares polynomial
    of degree ``order`` through the chunk means of ``losses`` at their chunks' centres."""
    x, y = chunk_means(losses, chunk)
    coefficients = np.polyfit(x.mean(axis=1), y, order)
    return float(coefficients[0] * math.factorial(order))


def _fit(family: str, x: np.ndarray, y: np.ndarray, target: int) -> float:
    """``family`` fitted to the chunk means ``y`` of the steps ``x`` (one row per chunk), its
    value at x = ``target``; NaN when the fit fails."""
    curve, start, bounds = FAMILIES[family]
    first, last = x.mean(axis=1)[[0, -1]]
    lower, upper = bounds
    p0 = np.clip(start(np.array([first, last]), y[[0, -1]]), lower, upper)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            params, _ = curve_fit(lambda xs, *p: curve(xs, *p).mean(axis=1), x, y, p0=p0,
                                  bounds=bounds, max_nfev=MAX_EVALUATIONS)
        except (RuntimeError, ValueError):
            return math.nan
        value = float(curve(np.array([float(target)]), *params)[0])
    return value if math.isfinite(value) else math.nan


def extrapolate(losses: Sequence[float], family: str, target: int, points: int) -> float:
    """The loss at ``target`` steps predicted from ``losses`` smoothed to about ``points``
    chunk means (``ensemble``: the mean over the families that fitted); when no fit succeeds,
    the last chunk mean (NaN for a curve holding NaN)."""
    x, y = chunk_means(losses, max(1, len(losses) // points))
    if not np.isfinite(y).all():
        return math.nan
    names = list(FAMILIES) if family == "ensemble" else [family]
    fitted = [v for v in (_fit(name, x, y, target) for name in names) if math.isfinite(v)]
    return float(np.mean(fitted)) if fitted else float(y[-1])


def _require_int(estimator: str, option: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpeedyNASError(f"estimator {estimator!r}: option {option!r} must be an integer "
                             f">= {low}, got {value!r}")


Window = Annotated[Optional[int], Option(min=2, help="the last steps before B fitted; null: "
                                                     "all B")]
Chunk = Annotated[int, Option(min=1, help="steps averaged into each fitted point")]


class _Shape(Estimator):
    """A derivative of the smoothed train-loss curve over the last ``window`` steps, negated."""

    needs = frozenset({"train_losses"})
    order: Literal[1, 2] = 1

    def __init__(self, window: Window = None, chunk: Chunk = 1) -> None:
        _require_int(self.name, "chunk", chunk, 1)
        if window is not None:
            _require_int(self.name, "window", window, (self.order + 1) * chunk)
        self.window, self.chunk = window, chunk

    @property
    def options(self) -> dict[str, Any]:
        return {"window": self.window, "chunk": self.chunk}

    def min_budget(self) -> int:
        return self.window or (self.order + 1) * self.chunk

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        start = budget - (self.window or budget)
        return -derivative(trajectory.train_losses[start:budget], self.chunk, self.order)


@register_estimator("curve_slope")
class CurveSlope(_Shape):
    """Minus the slope (loss per step) of the line fitted to the last ``window`` steps."""

    order = 1


@register_estimator("curve_curvature")
class CurveCurvature(_Shape):
    """Minus the curvature (loss per step squared) of the quadratic fitted to the last
    ``window`` steps."""

    order = 2


Target = Annotated[int, Option(min=1, help="the step count whose loss is predicted")]
Points = Annotated[int, Option(min=4, help="about this many chunk means are fitted (chunk = "
                                           "B // points)")]


@register_estimator("lce")
class LCE(Estimator):
    """Minus the loss at ``target`` steps extrapolated from the B losses (Domhan et al. 2015)."""

    needs = frozenset({"train_losses"})

    def __init__(self, family: Annotated[Family, Option(help="parametric curve, or the mean "
                                                             "of those that fit")] = "ensemble",
                 target: Target = 300, points: Points = 20) -> None:
        if family not in (*FAMILIES, "ensemble"):
            raise SpeedyNASError(f"estimator 'lce': option 'family' must be one of "
                                 f"{', '.join([*FAMILIES, 'ensemble'])}, got {family!r}")
        _require_int("lce", "target", target, 1)
        _require_int("lce", "points", points, 4)
        self.family, self.target, self.points = family, target, points

    @property
    def options(self) -> dict[str, Any]:
        return {"family": self.family, "target": self.target, "points": self.points}

    def min_budget(self) -> int:
        return 4  # a three-parameter curve needs more than three points

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return -extrapolate(trajectory.train_losses[:budget], self.family, self.target,
                            self.points)


@register_estimator("lce_learned")
class LearnedLCE(Estimator):
    """TSE at ``target`` steps predicted from the curve prefix up to B by an SVR fitted on the
    candidates fine-tuned to ``target`` (LcSVR: Baker, Gupta, Raskar and Naik, "Accelerating
    neural architecture search using performance prediction", ICLR workshop 2018).

    Features of the prefix: :data:`LEVELS` chunk means spread over it, its slope and
    curvature, and each :data:`FAMILIES` extrapolation to ``target``. An RBF-kernel SVR (as
    LcSVR; features and label standardised) suits a few dozen fit points and a smooth label,
    and fits in milliseconds. The fit set is a seeded choice of ``fit_size`` of the candidates
    whose trajectories reach ``target`` (null: the longest trajectory in the set), or all of
    them (``fit_size`` null, or fewer). Fitted candidates score their observed TSE at
    ``target``: they were fine-tuned that far, so that is the best value at hand, on the same
    scale as the predictions (their score reads beyond B, and a search's metrics of this
    estimator include them). The others, including those that reach ``target`` but were held
    out, score the prediction from their prefix; fewer than :data:`MIN_FIT` candidates to fit
    on is refused, and a candidate whose prefix holds NaN scores NaN.
    """

    needs = frozenset({"train_losses"})
    joint = True

    def __init__(self, target: Annotated[Optional[int], Option(
                     min=1, help="steps of the predicted TSE; null: the longest trajectory "
                                 "of the set")] = None,
                 fit_size: Annotated[Optional[int], Option(
                     min=MIN_FIT, help="fit on this many of the candidates that reach target "
                                       "(the others are predicted); null: all of them")] = 20,
                 points: Points = 20,
                 seed: Annotated[int, Option(min=0, help="seed of the fit set")] = 0) -> None:
        if target is not None:
            _require_int(self.name, "target", target, 1)
        if fit_size is not None:
            _require_int(self.name, "fit_size", fit_size, MIN_FIT)
        _require_int(self.name, "points", points, 4)
        _require_int(self.name, "seed", seed, 0)
        self.target, self.fit_size, self.points, self.seed = target, fit_size, points, seed

    @property
    def options(self) -> dict[str, Any]:
        return {"target": self.target, "fit_size": self.fit_size, "points": self.points,
                "seed": self.seed}

    def min_budget(self) -> int:
        return 4

    def features(self, losses: Sequence[float], target: int) -> list[float]:
        """The prefix features of ``losses`` (l_0 .. l_{B-1})."""
        chunk = max(1, len(losses) // self.points)
        _, y = chunk_means(losses, chunk)
        levels = y[np.linspace(0, len(y) - 1, LEVELS).round().astype(int)]
        return [*levels, derivative(losses, chunk, 1), derivative(losses, chunk, 2),
                *(extrapolate(losses, f, target, self.points) for f in FAMILIES)]

    def score_set(self, trajectories: Sequence[Trajectory], candidates: Sequence[Candidate],
                  budget: int, truths: Mapping[str, float | None] | None = None) -> list[float]:
        self.check_budget(budget)
        for t, c in zip(trajectories, candidates):
            problems = self.missing(t, budget)
            if problems:
                raise SpeedyNASError(f"estimator {self.name!r} cannot score B={budget} for "
                                     f"{c.arch}: " + "; ".join(problems))
        target = self.target or max(t.steps for t in trajectories)
        reach = [i for i, t in enumerate(trajectories) if t.steps >= target]
        if self.fit_size is not None and len(reach) > self.fit_size:
            rng = np.random.default_rng(self.seed)
            reach = sorted(rng.choice(reach, size=self.fit_size, replace=False).tolist())
        fitted = set(reach)
        scores = [TSE().score(trajectories[i], candidates[i], target) if i in fitted else math.nan
                  for i in range(len(trajectories))]
        rest = [i for i in range(len(trajectories)) if i not in fitted]
        if not rest:
            return scores
        rows = {i: self.features(trajectories[i].train_losses[:budget], target)
                for i in [*reach, *rest]}
        usable = {i for i, row in rows.items() if np.isfinite(row).all()}  # NaN losses: NaN
        train = [i for i in reach if i in usable and math.isfinite(scores[i])]
        if len(train) < MIN_FIT:
            raise SpeedyNASError(f"estimator {self.name!r} fits on the candidates fine-tuned to "
                                 f"target={target} steps: {len(train)} of {len(candidates)} "
                                 f"are (with finite losses), and it needs at least {MIN_FIT}")
        model = _svr()
        model.fit([rows[i] for i in train], [scores[i] for i in train])
        predict = [i for i in rest if i in usable]
        for i, value in zip(predict, model.predict([rows[i] for i in predict]) if predict else []):
            scores[i] = float(value)
        return scores


def _svr() -> Any:
    """An RBF-kernel SVR on standardised features and label (scikit-learn, imported on use)."""
    try:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR
    except ImportError:
        raise SpeedyNASError("estimator 'lce_learned' needs scikit-learn: pip install "
                             "'speedynas[learned]' (or scikit-learn>=1.2)") from None
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), SVR(kernel="rbf")),
                                      transformer=StandardScaler())
