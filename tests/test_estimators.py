"""Estimator registry, the built-in estimators' definitions, and the trajectory records."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from speedynas_core.errors import SpeedyNASError
from estimators import (
    ESTIMATORS,
    RECORDS,
    Candidate,
    Estimator,
    Trajectory,
    create_estimator,
    list_estimators,
    needed_records,
    register_estimator,
    zero_cost_measurers,
)

BUDGETS = (4, 8)
#: The estimators proper (a table lookup reads a benchmark: tests/test_strategies.py).
ESTIMATES = [name for name in list_estimators() if not ESTIMATORS.get(name).lookup]


def _trajectory(shift: float = 0.0, steps: int = 8, fields: frozenset[str] = RECORDS,
                bend: float = 0.0) -> Trajectory:
    """A plausible fine-tune: losses decreasing with noise; ``shift`` lowers every loss and
    raises every accuracy and zero-cost value (a uniformly better candidate); ``bend`` makes
    the train loss fall ever faster (-bend * b^2). Only ``fields`` are recorded."""
    rng = np.random.default_rng(0)
    train = [2.3 - 0.1 * b - bend * b * b + 0.05 * rng.standard_normal() - shift
             for b in range(steps)]
    val = [2.2 - 0.08 * b + 0.05 * rng.standard_normal() - shift for b in range(steps)]
    acc = {B: 20.0 + 2.0 * B + 10 * shift for B in BUDGETS}
    recorded: dict[int, float] = {}
    if "val_acc" in fields:
        recorded.update(acc)
    if "val_acc_inherited" in fields:
        recorded[0] = 15.0 + 10 * shift
    zero_cost = {name: 1.0 + shift for name in list_estimators()} if "zero_cost" in fields else {}
    return Trajectory(train_losses=train if "train_losses" in fields else [],
                      val_losses=val if "val_losses" in fields else None,
                      val_acc=recorded, zero_cost=zero_cost)


def _candidate(bigger: bool = False) -> Candidate:
    return Candidate(arch="some-arch", params=2_000_000 if bigger else 1_000_000,
                     flops=300_000_000 if bigger else 100_000_000)


def _score(est: Estimator, trajectory: Trajectory, candidate: Candidate, budget: int,
           others: tuple[tuple[Trajectory, Candidate], ...] = ()) -> float:
    """``est``'s score of ``candidate``; a joint estimator scores it within a background set of
    24 candidates plus ``others`` (a learned one fits on the background's truths only)."""
    if not est.joint:
        return est.score(trajectory, candidate, budget)
    shifts = np.linspace(-0.5, 1.0, 24)
    background = [(_trajectory(shift=s, fields=est.needs),
                   Candidate(f"bg{i}", params=int(1e6 * (1.5 + s)), flops=int(1e8 * (1.5 + s))))
                  for i, s in enumerate(shifts)]
    truths = {f"bg{i}": 50.0 + 10.0 * s for i, s in enumerate(shifts)}
    pairs = [(trajectory, candidate), *others, *background]
    return est.score_set([t for t, _ in pairs], [c for _, c in pairs], budget,
                         truths if est.learned else None)[0]


# --------------------------------------------------------------------------- every estimator

@pytest.mark.parametrize("name", ESTIMATES)
def test_every_estimator_gives_finite_float(name: str) -> None:
    est = create_estimator(name)
    assert est.name == name and est.needs <= RECORDS
    for budget in BUDGETS:
        value = _score(est, _trajectory(), _candidate(), budget)
        assert isinstance(value, float) and math.isfinite(value)


#: Estimators of the loss curve's shape alone (estimators/curves.py): a uniformly lower curve
#: has the same shape; better is a curve that still falls, and ever faster.
SHAPE_ONLY = {"curve_slope", "curve_curvature"}


@pytest.mark.parametrize("name", ESTIMATES)
def test_every_estimator_is_larger_is_better(name: str) -> None:
    est = create_estimator(name)
    bend = 0.02 if name in SHAPE_ONLY else 0.0
    for budget in BUDGETS:
        worse = (_trajectory(shift=0.0), _candidate(bigger=False))
        better = (_trajectory(shift=0.5, bend=bend), _candidate(bigger=True))
        assert _score(est, *better, budget, (worse,)) > _score(est, *worse, budget, (better,)), \
            (name, budget)


@pytest.mark.parametrize("name", ESTIMATES)
def test_declared_needs_are_sufficient(name: str) -> None:
    est = create_estimator(name)
    only = _trajectory(fields=est.needs)
    for budget in BUDGETS:
        assert _score(est, only, _candidate(), budget) == _score(est, _trajectory(), _candidate(),
                                                                 budget)


@pytest.mark.parametrize("name", ESTIMATES)
def test_missing_needed_record_is_named(name: str) -> None:
    est = create_estimator(name)
    for need in est.needs:
        lacking = _trajectory(fields=RECORDS - {need})
        with pytest.raises(SpeedyNASError, match=rf"estimator '{name}' cannot score B=8"):
            est.score(lacking, _candidate(), 8)


@pytest.mark.parametrize("name", ESTIMATES)
def test_budget_beyond_recorded_is_an_error(name: str) -> None:
    est = create_estimator(name)
    if not est.needs & {"train_losses", "val_losses", "val_acc"}:  # the same at every B
        assert est.score(_trajectory(), _candidate(), 1000) == est.score(_trajectory(),
                                                                         _candidate(), 4)
        return
    with pytest.raises(SpeedyNASError, match=rf"'{name}'.*B=9"):
        est.score(_trajectory(), _candidate(), 9)


# --------------------------------------------------------------------------- hand computed

HAND = Trajectory(train_losses=[2.0, 1.5, 1.0, 0.5], val_losses=[1.8, 1.2, 0.9, 0.7],
                  val_acc={0: 11.0, 2: 40.0, 3: 55.0}, zero_cost={"snip": 0.25, "nwot": -7.5})
CAND = Candidate("x", params=10, flops=20)


@pytest.mark.parametrize("name, options, budget, expected", [
    ("tse", {}, 3, -4.5),
    ("tse", {}, 1, -2.0),             # B = 1: exactly one loss, l_0
    ("tse", {}, 4, -5.0),
    ("tlmini", {}, 3, -1.0),
    ("tlmini", {}, 1, -2.0),
    ("tse_e", {"window": 2}, 3, -2.5),
    ("tse_e", {"window": 3}, 3, -4.5),  # window = B is plain TSE
    ("tse_e", {}, 4, -1.5),             # default E = B // 2 = 2: l_2 + l_3
    ("tse_e", {}, 3, -1.0),             # E = 3 // 2 = 1
    ("tse_e", {"window_fraction": 0.75}, 4, -3.0),  # E = 3: l_1 + l_2 + l_3
    ("tse_ema", {"gamma": 0.5}, 3, -(0.25 * 2.0 + 0.5 * 1.5 + 1.0)),
    ("tse_ema", {"gamma": 1.0}, 4, -5.0),
    ("sovl", {}, 2, -3.0),
    ("sovl", {}, 3, -3.9),
    ("valacc", {}, 2, 40.0),
    ("valacc", {}, 3, 55.0),
    ("valacc", {}, 0, 11.0),
    ("valacc_inherited", {}, 2, 11.0),
    ("valacc_inherited", {}, 3, 11.0),
    ("params", {}, 3, 10.0),
    ("flops", {}, 3, 20.0),
    ("snip", {}, 3, 0.25),              # the measured value, the same at every B
    ("snip", {}, 0, 0.25),
    ("nwot", {}, 4, -7.5),
])
def test_hand_computed(name: str, options: dict, budget: int, expected: float) -> None:
    assert create_estimator(name, **options).score(HAND, CAND, budget) == pytest.approx(expected)


def test_tse_ema_default_gamma_is_paper_value() -> None:
    est = create_estimator("tse_ema")
    assert est.options == {"gamma": 0.999}
    assert est.score(HAND, CAND, 2) == pytest.approx(-(0.999 * 2.0 + 1.5))


def test_budget_errors() -> None:
    with pytest.raises(SpeedyNASError, match=r"'tse'.*B=5.*needs 5 training losses but 4"):
        create_estimator("tse").score(HAND, CAND, 5)
    with pytest.raises(SpeedyNASError, match=r"'valacc'.*B=1.*recorded at B = \[0, 2, 3\]"):
        create_estimator("valacc").score(HAND, CAND, 1)
    with pytest.raises(SpeedyNASError, match=r"'tse'.*budget 0 must be an integer >= 1"):
        create_estimator("tse").score(HAND, CAND, 0)
    assert create_estimator("tse_e", window=2, window_fraction=1.0).window_at(8) == 2  # window wins
    with pytest.raises(SpeedyNASError, match=r"'tse_e'.*window 4 is longer than budget B=3"):
        create_estimator("tse_e", window=4).check_budget(3)
    assert create_estimator("tse").score(HAND, CAND, np.int64(3)) == -4.5
    no_val = Trajectory(train_losses=[1.0, 1.0])
    with pytest.raises(SpeedyNASError, match=r"'sovl'.*validation losses but none"):
        create_estimator("sovl").score(no_val, CAND, 1)
    with pytest.raises(SpeedyNASError, match=r"'valacc_inherited'.*\(B = 0\)"):
        create_estimator("valacc_inherited").score(no_val, CAND, 1)
    with pytest.raises(SpeedyNASError, match=r"'snip'.*zero-cost values but none were measured"):
        create_estimator("snip").score(no_val, CAND, 1)
    with pytest.raises(SpeedyNASError, match=r"'jacov'.*its zero-cost value.*measured: nwot, snip"):
        create_estimator("jacov").score(HAND, CAND, 1)


# --------------------------------------------------------------------------- registry and options

def test_create_estimator_errors() -> None:
    with pytest.raises(SpeedyNASError, match=r"unknown estimator 'tsee'; registered: .*tse_e"):
        create_estimator("tsee")
    with pytest.raises(SpeedyNASError, match=r"'tse_e' has no option 'windw'; options: window"):
        create_estimator("tse_e", windw=3)
    with pytest.raises(SpeedyNASError, match=r"'tse' has no option 'gamma'; it takes no options"):
        create_estimator("tse", gamma=0.5)
    for options, bad in [({"gamma": 0.0}, "gamma"), ({"gamma": 1.5}, "gamma"),
                         ({"gamma": "x"}, "gamma"), ({"window": 0}, "window"),
                         ({"window": 2.5}, "window"), ({"window_fraction": 1.5}, "window_fraction")]:
        name = "tse_ema" if "gamma" in options else "tse_e"
        with pytest.raises(SpeedyNASError, match=rf"'{name}'.*'{bad}'"):
            create_estimator(name, **options)


def test_describe_shows_effective_options() -> None:
    assert create_estimator("tse").describe() == "tse"
    assert create_estimator("tse_e").describe() == "tse_e(window_fraction=0.5)"
    assert create_estimator("tse_e", window=25).describe() == "tse_e(window=25)"


def test_register_class_and_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ESTIMATORS, "_factories", dict(ESTIMATORS._factories))

    @register_estimator("neg_last_val")
    class NegLastVal(Estimator):
        needs = frozenset({"val_losses"})

        def compute(self, trajectory, candidate, budget):
            return -trajectory.val_losses[budget - 1]

    @register_estimator("scaled_first", needs={"train_losses"})
    def scaled_first(trajectory, candidate, budget, *, scale=1.0):
        return -scale * trajectory.train_losses[0]

    assert {"neg_last_val", "scaled_first"} <= set(list_estimators())
    assert create_estimator("neg_last_val").score(HAND, CAND, 3) == pytest.approx(-0.9)
    est = create_estimator("scaled_first", scale=3.0)
    assert est.needs == frozenset({"train_losses"}) and est.name == "scaled_first"
    assert est.score(HAND, CAND, 2) == -6.0 and est.describe() == "scaled_first(scale=3.0)"
    assert create_estimator("scaled_first").score(HAND, CAND, 2) == -2.0
    with pytest.raises(SpeedyNASError, match="'scaled_first' has no option 'scal'; options: scale"):
        create_estimator("scaled_first", scal=2)
    with pytest.raises(SpeedyNASError, match="'scaled_first' cannot score B=5"):
        est.score(HAND, CAND, 5)
    with pytest.raises(ValueError, match="unknown records"):
        register_estimator("bad", needs={"gradients"})(scaled_first)
    with pytest.raises(TypeError, match="needs="):
        register_estimator("bad")(scaled_first)


def test_score_set_matches_score() -> None:
    est = create_estimator("tse")
    trajectories = [_trajectory(shift=s) for s in (0.0, 0.3, -0.2)]
    candidates = [_candidate()] * 3
    assert est.score_set(trajectories, candidates, 4) == [est.score(t, c, 4) for t, c in
                                                          zip(trajectories, candidates)]
    with pytest.raises(ValueError):
        est.score_set(trajectories, candidates[:2], 4)


def test_needed_records() -> None:
    assert needed_records([create_estimator("params"), create_estimator("flops")]) == frozenset()
    assert needed_records(create_estimator(n) for n in ("tse", "sovl", "valacc_inherited")) == \
        frozenset({"train_losses", "val_losses", "val_acc_inherited"})
    assert needed_records([create_estimator("snip"), create_estimator("params")]) == \
        frozenset({"zero_cost"})
    combo = create_estimator("combo", members=["sovl", "nwot"])
    assert needed_records([combo]) == frozenset({"val_losses", "zero_cost"})


def test_zero_cost_measurers_come_from_estimators_and_combo_members() -> None:
    snip = create_estimator("snip")
    combo = create_estimator("combo", members=["tse", "snip", "synflow"])
    assert [e.name for e in zero_cost_measurers([snip, create_estimator("tse"), combo])] == \
        ["snip", "synflow"]
    assert zero_cost_measurers([create_estimator("tse"), create_estimator("params")]) == []


def test_joint_estimators_refuse_single_scoring() -> None:
    with pytest.raises(NotImplementedError, match="'combo' scores only whole sets"):
        create_estimator("combo").score(HAND, CAND, 2)


# --------------------------------------------------------------------------- records

def test_trajectory_and_candidate_json_round_trip() -> None:
    text = json.dumps({"trajectory": HAND.to_dict(), "candidate": CAND.to_dict()})
    data = json.loads(text)
    assert data["trajectory"]["val_acc"] == {"0": 11.0, "2": 40.0, "3": 55.0}
    assert data["trajectory"]["zero_cost"] == {"snip": 0.25, "nwot": -7.5}
    back = Trajectory.from_dict(data["trajectory"])
    assert back == HAND and set(back.val_acc) == {0, 2, 3}
    assert Candidate.from_dict(data["candidate"]) == CAND
    none_val = Trajectory(train_losses=[1.0])
    assert Trajectory.from_dict(json.loads(json.dumps(none_val.to_dict()))) == none_val
    assert HAND.steps == 4


def test_malformed_records() -> None:
    with pytest.raises(SpeedyNASError, match="no 'train_losses'"):
        Trajectory.from_dict({"val_acc": {}})
    with pytest.raises(SpeedyNASError, match="train_losses must be a list of numbers"):
        Trajectory.from_dict({"train_losses": ["a"]})
    with pytest.raises(SpeedyNASError, match="val_acc must map budgets"):
        Trajectory.from_dict({"train_losses": [], "val_acc": {"x": 1}})
    with pytest.raises(SpeedyNASError, match="zero_cost must map estimator names"):
        Trajectory.from_dict({"train_losses": [], "zero_cost": {"snip": "x"}})
    old = Trajectory.from_dict({"train_losses": [1.0]})  # results written before zero_cost
    assert old.zero_cost == {}
    with pytest.raises(SpeedyNASError, match="no 'flops'"):
        Candidate.from_dict({"arch": "a", "params": 1})
