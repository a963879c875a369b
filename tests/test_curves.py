"""Curve estimators on curves whose answers are known by construction: lines, parabolas, and
losses generated exactly from each parametric family."""
from __future__ import annotations

import math

import numpy as np
import pytest

import estimators.curves as curves
from speedynas_core.errors import SpeedyNASError
from estimators import Candidate, Trajectory, create_estimator
from estimators.curves import FAMILIES, chunk_means, derivative, extrapolate

CANDIDATE = Candidate("arch", params=1, flops=None)
STEPS = np.arange(1, 101, dtype=float)  # x = b + 1 for l_0 .. l_99
#: (family, parameters) generating each test curve; the loss at 1000 steps is far beyond it.
CURVES = [("pow3", (0.5, 2.0, 0.7)), ("log_power", (2.5, math.log(30), 1.2)),
          ("exp3", (0.4, 0.05, 0.5)), ("vapor_pressure", (0.8, 0.5, -0.3))]


def curve(family: str, params: tuple[float, ...], x: np.ndarray = STEPS) -> np.ndarray:
    return FAMILIES[family][0](np.asarray(x, dtype=float), *params)


def score(name: str, losses, budget: int, **options) -> float:
    return create_estimator(name, **options).score(
        Trajectory(train_losses=list(losses)), CANDIDATE, budget)


def test_chunk_means_align_at_b_and_drop_the_first_remainder():
    x, y = chunk_means([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)
    assert x.tolist() == [[2, 3, 4], [5, 6, 7]]  # l_0 (x = 1) dropped
    assert y.tolist() == [2.0, 5.0]
    x, y = chunk_means([3.0, 1.0], 1)
    assert x.tolist() == [[1], [2]] and y.tolist() == [3.0, 1.0]


def test_slope_of_a_line_is_its_slope_smoothed_or_not():
    line = 2.0 - 0.01 * STEPS
    for chunk in (1, 4, 7):
        assert score("curve_slope", line, 100, chunk=chunk) == pytest.approx(0.01, rel=1e-9)
    # Only the window counts: a kink before it is invisible.
    kinked = np.where(STEPS <= 60, 5.0 - 0.05 * STEPS, 2.0 - 0.01 * STEPS)
    assert score("curve_slope", kinked, 100, window=40) == pytest.approx(0.01, rel=1e-9)
    assert score("curve_slope", kinked, 100) > 0.02  # the whole curve falls faster


def test_curvature_of_a_parabola_is_its_second_derivative_smoothed_or_not():
    parabola = 3.0 - 0.04 * STEPS + 0.0002 * STEPS ** 2  # second derivative 0.0004 per step^2
    for chunk in (1, 5):
        assert score("curve_curvature", parabola, 100, chunk=chunk) == pytest.approx(-0.0004,
                                                                                    rel=1e-6)
    assert derivative(parabola[:50], 1, 2) == pytest.approx(0.0004, rel=1e-6)
    assert score("curve_curvature", 2.0 - 0.01 * STEPS, 100) == pytest.approx(0.0, abs=1e-12)


def test_the_window_reads_only_losses_before_b():
    line = list(2.0 - 0.01 * STEPS[:50]) + [100.0] * 50  # garbage after B = 50
    assert score("curve_slope", line, 50, window=10) == pytest.approx(0.01, rel=1e-9)


@pytest.mark.parametrize("family, params", CURVES)
def test_a_curve_of_a_family_is_extrapolated_to_its_true_value(family, params):
    truth = float(curve(family, params, [1000.0])[0])
    for points in (100, 20):  # every loss, and chunk means of 5 (matched exactly by the fit)
        assert extrapolate(curve(family, params), family, 1000, points) == pytest.approx(
            truth, rel=1e-6)
    assert score("lce", curve(family, params), 100, family=family, target=1000) == \
        pytest.approx(-truth, rel=1e-6)


def test_the_ensemble_is_the_mean_of_its_families_predictions():
    losses = curve("pow3", (0.5, 2.0, 0.7)) + 0.01 * np.sin(STEPS)
    each = [extrapolate(losses, f, 500, 20) for f in FAMILIES]
    assert extrapolate(losses, "ensemble", 500, 20) == pytest.approx(np.mean(each), rel=1e-12)


def test_the_prediction_uses_only_losses_before_b():
    losses = list(curve("pow3", (0.5, 2.0, 0.7))[:60]) + [50.0] * 40
    assert score("lce", losses, 60, family="pow3", target=1000) == pytest.approx(
        -float(curve("pow3", (0.5, 2.0, 0.7), [1000.0])[0]), rel=1e-6)


def test_a_failed_fit_scores_the_last_smoothed_loss(monkeypatch):
    def gives_up(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(curves, "curve_fit", gives_up)
    losses = [2.0, 1.8, 1.7, 1.6, 1.5, 1.2, 1.0, 0.8]
    assert score("lce", losses, 8, points=4) == pytest.approx(-0.9)  # mean of the last chunk
    assert score("lce", losses, 8, family="exp3", points=8) == pytest.approx(-0.8)


def test_a_curve_holding_nan_scores_nan():
    losses = [2.0, 1.5, math.nan, 1.0, 0.9]
    assert math.isnan(score("lce", losses, 5))
    assert math.isnan(score("curve_slope", losses, 5))


@pytest.mark.parametrize("name, options, key", [
    ("lce", {"family": "cubic"}, "family"),
    ("lce", {"points": 3}, "points"),
    ("lce", {"target": 0}, "target"),
    ("curve_slope", {"chunk": 0}, "chunk"),
    ("curve_slope", {"window": 3, "chunk": 2}, "window"),  # two chunks of 2 do not fit in 3
    ("curve_curvature", {"window": 5, "chunk": 2}, "window"),
    ("lce_learned", {"fit_size": 2}, "fit_size"),
    ("lce", {"window": 5}, "window"),
])
def test_bad_options_are_refused_naming_the_key(name, options, key):
    with pytest.raises(SpeedyNASError, match=f"'{key}'"):
        create_estimator(name, **options)


def test_budgets_too_short_for_the_fit_are_refused():
    with pytest.raises(SpeedyNASError, match=r"'lce'.*>= 4"):
        create_estimator("lce").check_budget(3)
    with pytest.raises(SpeedyNASError, match=r"'curve_slope'.*>= 10"):
        create_estimator("curve_slope", window=10).check_budget(9)
    assert create_estimator("curve_curvature", chunk=2).min_budget() == 6


def _family_set(count: int, steps: int) -> list[Trajectory]:
    """``count`` pow3 curves whose asymptote c and rate differ: the TSE at 100 steps is known."""
    rng = np.random.default_rng(0)
    return [Trajectory(train_losses=list(curve("pow3", (c, 2.0, alpha))[:steps]))
            for c, alpha in zip(rng.uniform(0.2, 1.0, count), rng.uniform(0.3, 1.2, count))]


def test_lce_learned_predicts_the_long_tse_of_short_curves_from_the_long_ones():
    long, short = _family_set(40, 100), _family_set(60, 100)[40:]
    short = [Trajectory(train_losses=t.train_losses[:30]) for t in short]
    candidates = [Candidate(f"a{i}", 1, None) for i in range(60)]
    scores = create_estimator("lce_learned", fit_size=None).score_set([*long, *short],
                                                                       candidates, 30)
    # Fitted candidates (fine-tuned to target = 100 steps) score their observed TSE there.
    assert scores[:40] == [-math.fsum(t.train_losses) for t in long]
    truth = [-math.fsum(t.train_losses) for t in _family_set(60, 100)[40:]]
    predicted = scores[40:]
    assert np.corrcoef(predicted, truth)[0, 1] > 0.95
    spread = np.std(truth)
    assert np.mean(np.abs(np.subtract(predicted, truth))) < 0.3 * spread


def test_lce_learned_holds_out_all_but_fit_size_and_is_seeded():
    trajectories = _family_set(30, 100)
    candidates = [Candidate(f"a{i}", 1, None) for i in range(30)]
    estimator = create_estimator("lce_learned", fit_size=10, seed=3)
    scores = estimator.score_set(trajectories, candidates, 40)
    observed = [i for i, (t, s) in enumerate(zip(trajectories, scores))
                if s == -math.fsum(t.train_losses)]
    assert len(observed) == 10
    assert scores == estimator.score_set(trajectories, candidates, 40)
    # Every B: the prediction reads the prefix only, so the held-out losses after B are free.
    changed = [Trajectory(train_losses=t.train_losses[:40] + [9.0] * 60) if i not in observed
               else t for i, t in enumerate(trajectories)]
    assert estimator.score_set(changed, candidates, 40) == scores


def test_lce_learned_refuses_too_few_long_curves():
    trajectories = [*_family_set(2, 100), *_family_set(5, 20)[2:]]
    candidates = [Candidate(f"a{i}", 1, None) for i in range(5)]
    with pytest.raises(SpeedyNASError, match=r"target=100 steps: 2 of 5 .* at least 3"):
        create_estimator("lce_learned").score_set(trajectories, candidates, 20)
