"""The predictor layer: fit/predict contract, uncertainty, acquisition functions, real NB201."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, spearmanr

import search_spaces
from speedynas_core.errors import SpeedyNASError
from speedynas_predictors import PREDICTORS, Prediction, acquisition_values, create_predictor

MODELS = PREDICTORS.names()


def _noisy_line(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three uniform features in [0, 10]; the label is the first plus N(0, noise^2)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, (n, 3))
    return x, x[:, 0] + rng.normal(0, noise, n)


def test_registered_models():
    assert MODELS == ["ensemble", "gbt", "prior", "rf"]


@pytest.mark.parametrize("name", MODELS)
def test_a_predictor_learns_the_label_and_is_seeded(name):
    x, y = _noisy_line(300, 1.0)
    test_x, _ = _noisy_line(100, 0.0, seed=1)
    first = create_predictor(name, seed=3).fit(x, y).predict(test_x)
    assert isinstance(first, Prediction) and first.mean.shape == first.std.shape == (100,)
    assert spearmanr(first.mean, test_x[:, 0]).statistic > 0.9
    again = create_predictor(name, seed=3).fit(x, y).predict(test_x)
    np.testing.assert_array_equal(first.mean, again.mean)
    np.testing.assert_array_equal(first.std, again.std)


@pytest.mark.parametrize("name", MODELS)
def test_exact_constant_labels_leave_no_uncertainty(name):
    x, _ = _noisy_line(50, 0.0)
    prediction = create_predictor(name).fit(x, np.full(50, 7.0)).predict(x[:5])
    np.testing.assert_allclose(prediction.mean, 7.0)
    np.testing.assert_allclose(prediction.std, 0.0, atol=1e-9)


def test_boosted_trees_uncertainty_matches_the_label_noise():
    """The 16 %/84 % quantile models span about two standard deviations of the noise."""
    x, y = _noisy_line(500, 2.0)
    test_x, _ = _noisy_line(200, 0.0, seed=1)
    std = create_predictor("gbt").fit(x, y).predict(test_x).std
    assert 1.5 < std.mean() < 2.5


@pytest.mark.parametrize("name", ["rf", "ensemble"])
def test_spread_grows_with_label_noise(name):
    x, quiet = _noisy_line(200, 0.1)
    _, loud = _noisy_line(200, 3.0)
    spread = [create_predictor(name).fit(x, y).predict(x).std.mean() for y in (quiet, loud)]
    assert spread[1] > 3 * spread[0]


def test_non_finite_features_rank_below_every_finite_value():
    x = np.array([[1.0], [2.0], [3.0], [4.0], [-np.inf], [np.nan]])
    y = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 0.0])
    mean = create_predictor("rf", trees=50).fit(x, y).predict([[-np.inf], [4.0]]).mean
    assert mean[0] < mean[1]


def test_huge_features_keep_their_order():
    """synflow-sized values (1e20 to 1e45) are beyond float32: mapped to a log scale, in
    order, so the trees can still split between them."""
    x = np.array([[1e20], [1e30], [1e40], [1e45], [-1e35]])
    y = np.array([2.0, 3.0, 4.0, 5.0, 1.0])
    mean = create_predictor("rf", trees=50, seed=0).fit(x, y).predict(x).mean
    assert np.all(np.isfinite(mean)) and mean[3] > mean[0] > mean[4]


@pytest.mark.parametrize("call, fragment", [
    (lambda p: p.fit(np.zeros((3, 2)), [1.0, 2.0]), "3 feature rows for 2 labels"),
    (lambda p: p.fit(np.zeros((1, 2)), [1.0]), "at least 2 finite labels, got 1 of 1"),
    (lambda p: p.fit(np.zeros((3, 2)), [1.0, math.nan, 2.0]), "got 2 of 3"),
    (lambda p: p.predict(np.zeros((2, 2))), "predicts only after fit"),
    (lambda p: p.fit(np.eye(3), [1.0, 2.0, 3.0]).predict(np.zeros((1, 2))),
     "fitted on 3 features but is given 2"),
])
def test_bad_inputs_are_named(call, fragment):
    with pytest.raises(SpeedyNASError, match=fragment):
        call(create_predictor("rf", trees=5))


def test_unknown_predictor_and_option_are_named():
    with pytest.raises(SpeedyNASError, match="unknown predictor 'xgb'; registered: ensemble, gbt"):
        create_predictor("xgb")
    with pytest.raises(SpeedyNASError, match="predictor 'rf' has no option 'depth'"):
        create_predictor("rf", depth=3)


def test_expected_improvement_by_hand():
    prediction = Prediction(np.array([5.0, 5.0, 7.0, 4.0]), np.array([1.0, 0.0, 0.0, 2.0]))
    ei = acquisition_values("ei", prediction, best=5.0, rng=np.random.default_rng(0))
    z = -0.5  # (4 - 5) / 2
    np.testing.assert_allclose(ei, [norm.pdf(0), 0.0, 2.0, -1 * norm.cdf(z) + 2 * norm.pdf(z)])


def test_ucb_mean_and_thompson():
    prediction = Prediction(np.array([1.0, 2.0]), np.array([3.0, 0.0]))
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(acquisition_values("ucb", prediction, 0, rng, kappa=2), [7, 2])
    np.testing.assert_allclose(acquisition_values("mean", prediction, 0, rng), [1, 2])
    draws = np.array([acquisition_values("thompson", prediction, 0, rng) for _ in range(2000)])
    assert (draws[:, 1] == 2).all()                      # no spread: the mean itself
    assert abs(draws[:, 0].mean() - 1) < 0.3 and abs(draws[:, 0].std() - 3) < 0.3
    with pytest.raises(ValueError, match="unknown acquisition 'pi'"):
        acquisition_values("pi", prediction, 0, rng)  # type: ignore[arg-type]


def test_graph_features_predict_nb201_accuracy():
    """A forest on the space's graph features, fitted on 100 of 1,000 cells, ranks the other 900
    by the shipped table's test accuracy (results/graph_features: 0.846 over all cells)."""
    space = search_spaces.create("nb201")
    truth = space.ground_truth("cifar10_test")
    archs = list(space.enumerate())
    rng = np.random.default_rng(0)
    chosen = [archs[i] for i in rng.choice(len(archs), size=1000, replace=False)]
    x = np.array([list(space.graph_features(a).values()) for a in chosen])
    y = np.array([truth.lookup(str(a)) for a in chosen])
    prediction = create_predictor("rf").fit(x[:100], y[:100]).predict(x[100:])
    assert spearmanr(prediction.mean, y[100:]).statistic > 0.75


def test_the_prior_weighs_as_its_pseudo_labels():
    """pseudo_labels=0 is the inner model itself; a prior worth many labels orders the rows as
    the prior does, with the inner model's values handed out in that order."""
    x, y = _noisy_line(40, 2.0)
    test_x, _ = _noisy_line(60, 0.0, seed=1)
    inner = create_predictor("gbt", seed=2).fit(x, y).predict(test_x)
    alone = create_predictor("prior", pseudo_labels=0, seed=2).fit(x, y).predict(test_x)
    np.testing.assert_array_equal(alone.mean, inner.mean)
    np.testing.assert_array_equal(alone.std, inner.std)
    ruled = create_predictor("prior", prior=1, pseudo_labels=1e9, seed=2).fit(x, y).predict(test_x)
    assert (np.diff(ruled.mean[np.argsort(test_x[:, 1])]) >= 0).all()
    np.testing.assert_array_equal(np.sort(ruled.mean), np.sort(inner.mean))
    model = create_predictor("prior", seed=2).fit(x, y)
    assert model.weight == pytest.approx(40 / (40 + 40))


def test_the_prior_column_and_model_are_checked():
    x, y = _noisy_line(10, 1.0)
    with pytest.raises(SpeedyNASError, match="column 5.*3 columns"):
        create_predictor("prior", prior=5).fit(x, y)
    with pytest.raises(SpeedyNASError, match="another predictor"):
        create_predictor("prior", model="prior")
