"""Multi-objective search over table objectives: directions, refusals, hand-checked fronts and
hypervolumes, the true NB201 accuracy-latency front of the shipped tables, and a table-mode
search with objectives."""
from __future__ import annotations

import numpy as np
import pytest

import search_spaces
from speedynas_core.errors import SpeedyNASError
from search_spaces import create_ground_truth, objective_names, table_objective
from search_spaces.nb201_extra_tables import HW_COLUMNS, ROBUSTNESS_COLUMNS
from search_spaces.nb201_table import COLUMNS
from speedynas_search import plot_correlation_vs_budget
from speedynas_search.pareto import hypervolume, hypervolume_gains, pareto_front, reached
from speedynas_search.results_store import Record
from speedynas_search.strategies import Fidelity, create_strategy
from speedynas_search.strategies.evolution import crowded_places, objective_reader
from speedynas_search.strategy_report import front_summary, space_coverage, space_points

from .test_strategies import table_search

SPACE = search_spaces.create("nb201")
TRUTH = create_ground_truth("nb201", space=SPACE, column="cifar10_test")
LATENCY = "pixel3_latency_cifar10"
ROBUST = "pgd@Linf_eps-1.0"
FIDELITY = Fidelity(0, "table", 0)
#: Three cells, each a different mix of ops.
ARCHS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
         "nor_conv_1x1~2|",
         "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
         "skip_connect~2|",
         "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")


def records(scores: list[float], archs: tuple[str, ...] = ARCHS) -> list[Record]:
    """Table-mode records of ``archs`` with fitness ``scores``."""
    return [Record(index=i, arch=arch, steps=0, params=1000 * (i + 1), flops=None, seconds=0.0,
                   scores={"table": {"0": score}}, trajectory={})
            for i, (arch, score) in enumerate(zip(archs, scores))]


def by_value(name: str) -> list[str]:
    """:data:`ARCHS` by increasing value of table objective ``name``."""
    objective = table_objective(SPACE, name)
    return sorted(ARCHS, key=lambda arch: objective.lookup(arch))


def test_hypervolume_of_hand_fronts_in_either_direction():
    # (score, cost) from the reference (0, 10): rectangles 3 x 9 and (5 - 3) x (10 - 4).
    assert hypervolume([3.0, 5.0], [1.0, 4.0], (0.0, 10.0)) == pytest.approx(27 + 12)
    # Both maximised, (3, 7) and (5, 2) from (0, 0): 3 x 7 + (5 - 3) x 2, the second passed
    # negated as a cost.
    assert hypervolume([3.0, 5.0], [-7.0, -2.0], (0.0, 0.0)) == pytest.approx(21 + 4)


def test_reached_exactly_and_within_a_tolerance():
    front = ([92.0, 94.0], [2.0, 3.0])
    assert reached(*front, [92.0, 93.95], [2.0, 3.02]) == [True, False]
    assert reached(*front, [92.0, 93.95], [2.0, 3.02], (0.1, 0.05)) == [True, True]
    assert reached(*front, [95.0], [1.0]) == [True, True]  # a better point reaches both
    assert reached(*front, [], []) == [False, False]


def test_every_shipped_column_is_an_objective_with_its_direction():
    names = objective_names(SPACE)
    assert names == ["params", "flops", *COLUMNS, *HW_COLUMNS, *ROBUSTNESS_COLUMNS]
    directions = {name: table_objective(SPACE, name).maximise for name in names[2:]}
    assert not directions[LATENCY] and not directions["edgegpu_energy_cifar100"]
    assert not directions["params_cifar10"]
    assert directions["cifar10_test"] and directions[ROBUST] and directions["val_accs"]
    assert directions["eyeriss_arithmetic_intensity_cifar10"]
    assert sum(not maximised for maximised in directions.values()) == 1 + 9 * 3  # 9 metrics x 3
    # The lookups are the registered sources' values.
    for name, source in ((LATENCY, "nb201_hw"), (ROBUST, "nb201_robustness"),
                         ("cifar100_test", "nb201")):
        truth = create_ground_truth(source, space=SPACE, column=name)
        assert table_objective(SPACE, name).lookup_many(ARCHS) == truth.lookup_many(ARCHS)


@pytest.mark.parametrize("space, name, fragment", [
    ("nb201", "pixel3_latency", "unknown objective 'pixel3_latency' for the nb201 space"),
    ("nb201", "params", "measured by the search"),
    ("darts", LATENCY, "valid objectives: params, flops"),
])
def test_an_unknown_objective_is_refused_naming_the_valid_ones(space, name, fragment):
    with pytest.raises(SpeedyNASError) as refusal:
        table_objective(search_spaces.create(space), name)
    message = str(refusal.value)
    assert fragment in message and "\n" not in message
    if name != "params":
        assert "params, flops" in message
    if space == "nb201" and name != "params":
        assert LATENCY in message and ROBUST in message


def test_evolution_refuses_an_unknown_or_repeated_objective():
    with pytest.raises(SpeedyNASError, match="unknown objective 'pixel3'.*pixel3_latency_cifar10"):
        create_strategy("evolution", SPACE, objectives=["params", "pixel3"])
    with pytest.raises(SpeedyNASError, match="repeats an objective"):
        create_strategy("evolution", SPACE, objectives=[LATENCY, LATENCY])
    assert create_strategy("evolution", SPACE, objectives=[LATENCY, ROBUST]).objectives == [
        LATENCY, ROBUST]


@pytest.mark.parametrize("name", [LATENCY, ROBUST, "params"])
def test_nsga_selection_prefers_the_better_end_of_each_objective(name):
    """With equal fitness the only non-dominated member is the best in the objective: the
    lowest latency or parameter count, the highest accuracy under attack."""
    members = records([90.0, 90.0, 90.0])
    places = crowded_places(members, {r.index: 90.0 for r in members},
                            [objective_reader(SPACE, name)])
    if name == "params":
        best = members[0].arch  # params 1000, 2000, 3000
    else:
        ordered = by_value(name)
        best = ordered[-1] if table_objective(SPACE, name).maximise else ordered[0]
    assert [r.arch for r in members if places[r.index] == 0] == [best]


@pytest.mark.parametrize("name", [LATENCY, ROBUST])
def test_the_found_front_trades_fitness_for_the_objective_in_its_direction(name):
    """Fitness decreasing as the objective gets better puts all three cells on the front; the
    other way round one cell would dominate both others."""
    ordered = by_value(name)  # increasing value
    maximise = table_objective(SPACE, name).maximise
    better_first = ordered[::-1] if maximise else ordered
    front = front_summary(records([1.0, 2.0, 3.0], tuple(better_first)),
                          dict.fromkeys(ARCHS, 90.0), FIDELITY, name, None, SPACE)
    assert front["maximise"] is maximise
    assert sorted(p["arch"] for p in front["found"]) == sorted(ARCHS)
    assert [p[name] for p in front["found"]] == table_objective(SPACE, name).lookup_many(
        p["arch"] for p in front["found"])
    swapped = front_summary(records([3.0, 2.0, 1.0], tuple(better_first)),
                            dict.fromkeys(ARCHS, 90.0), FIDELITY, name, None, SPACE)
    assert [p["arch"] for p in swapped["found"]] == [better_first[0]]


def test_a_front_paid_for_with_the_labels_is_chosen_by_the_labelled_values():
    """Labels falling as the robustness rises put all three cells on the front; paid values
    given the other way round make the best-labelled cell dominate both. Either way the points
    are measured at the table's robustness, and the true front does not depend on them."""
    ordered = by_value(ROBUST)  # increasing robustness
    table = table_objective(SPACE, ROBUST).lookup_many(ordered)
    assert table[0] < table[1] < table[2]
    labels = dict(zip(ordered, [3.0, 2.0, 1.0]))
    members = records([3.0, 2.0, 1.0], tuple(ordered))
    truths = dict(zip(ordered, [90.0, 91.0, 92.0]))
    by_table = front_summary(members, truths, FIDELITY, ROBUST, None, SPACE, labels)
    assert sorted(p["arch"] for p in by_table["found"]) == sorted(ARCHS)
    paid = dict(zip(ordered, table[::-1]))
    by_paid = front_summary(members, truths, FIDELITY, ROBUST, None, SPACE, labels, paid)
    assert [(p["arch"], p["paid"], p[ROBUST]) for p in by_paid["found"]] == [
        (ordered[0], table[2], table[0])]
    assert by_paid["true_among_evaluated"] == [
        {**p, "paid": paid[p["arch"]]} for p in by_table["true_among_evaluated"]]
    # (90, table[0]) alone against the evaluated true front: its area from the median (91).
    assert by_paid["coverage_of_evaluated"] == 0.0


def test_space_coverage_by_hand():
    # (true accuracy, latency): the front is (80, 0.5), (90, 1), (92, 2), (94, 3); (91, 2.5)
    # and (85, 5) are dominated. Median accuracy 90.5, worst latency 5.
    space = ([80.0, 90.0, 92.0, 94.0, 91.0, 85.0], [0.5, 1.0, 2.0, 3.0, 2.5, 5.0])
    found = ([92.0, 93.95], [2.0, 3.02])
    evaluated = ([92.0, 93.95, 94.0], [2.0, 3.02, 3.0])
    out = space_coverage(found, evaluated, space, 1.0, "latency")
    assert out["space_front"] == [{"truth": 80.0, "latency": 0.5}, {"truth": 90.0, "latency": 1.0},
                                  {"truth": 92.0, "latency": 2.0}, {"truth": 94.0, "latency": 3.0}]
    assert out["space_reference"] == [90.5, 5.0]
    # From (90.5, 5): the space 1.5 x 3 + 2 x 2 = 8.5; found 1.5 x 3 + 1.95 x 1.98.
    assert out["hypervolume_fraction"] == pytest.approx((4.5 + 1.95 * 1.98) / 8.5)
    # From (80, 5): the space 10 x 4 + 2 x 3 + 2 x 2 = 50; found 12 x 3 + 1.95 x 1.98.
    assert out["hypervolume_fraction_from_worst"] == pytest.approx((36 + 1.95 * 1.98) / 50)
    # Counted: (92, 2) and (94, 3); the tolerance is 5 % of their span (2, 1) = (0.1, 0.05).
    assert out["space_front_counted"] == 2
    assert out["space_front_found"] == 0.5
    assert out["space_front_within_epsilon"] == 1.0
    assert out["space_front_evaluated"] == 1.0
    # A maximised objective comes in negated and goes out with its own sign.
    flipped = space_coverage(found, evaluated, space, -1.0, "robust")
    assert flipped["space_reference"] == [90.5, -5.0]
    assert flipped["space_front"][0] == {"truth": 80.0, "robust": -0.5}
    assert flipped["hypervolume_fraction"] == out["hypervolume_fraction"]


def test_the_true_accuracy_latency_front_of_the_shipped_tables_is_non_dominated():
    true, latency = (np.array(v) for v in space_points(TRUTH, SPACE, LATENCY))
    assert len(true) == 15625
    front = pareto_front(true.tolist(), latency.tolist())
    assert 10 < len(front) < 200
    on_front = np.zeros(len(true), bool)
    on_front[front] = True
    for i in front:  # no cell of the space beats a front cell
        at_least = (true >= true[i]) & (latency <= latency[i])
        assert not np.any(at_least & ((true > true[i]) | (latency < latency[i])))
    # Every other cell is matched or beaten by a front cell.
    covered = np.zeros(len(true), bool)
    for i in front:
        covered |= (true <= true[i]) & (latency >= latency[i])
    assert covered.all()
    # Along the front, accuracy rises with latency; the best cell of the space is on it.
    assert np.all(np.diff(true[front]) > 0) and np.all(np.diff(latency[front]) >= 0)
    assert true[front[-1]] == true.max()
    # The front found when every cell is found is the whole front.
    whole = space_coverage((true[front].tolist(), latency[front].tolist()),
                           (true.tolist(), latency.tolist()), (true.tolist(), latency.tolist()),
                           1.0, LATENCY)
    assert whole["hypervolume_fraction"] == whole["space_front_found"] == 1.0


@pytest.mark.e2e
@pytest.mark.parametrize("name", [LATENCY, ROBUST])
def test_a_table_mode_search_with_a_table_objective_reports_its_front(tiny_run, name):
    summary, found_records, out = table_search(
        tiny_run, f"name=mo_{name.replace('@', '_')}", "limit.evaluations=200",
        f"strategy.objectives=[{name}]")
    front = summary["strategy"]["fronts"][name]
    objective = table_objective(SPACE, name)
    valid = create_ground_truth("nb201", space=SPACE, column="cifar10_valid_val")
    archs = [r["arch"] for r in found_records]
    sign = -1.0 if objective.maximise else 1.0
    expected = pareto_front(valid.lookup_many(archs),
                            [sign * v for v in objective.lookup_many(archs)])
    assert [p["arch"] for p in front["found"]] == [archs[i] for i in expected]
    # Along the found front the fitness rises as the objective gets worse.
    scores = [p["score"] for p in front["found"]]
    values = [sign * p[name] for p in front["found"]]
    assert scores == sorted(scores) and values == sorted(values)
    assert values[-1] > values[0]
    assert 0.5 < front["hypervolume_fraction"] <= 1.0
    assert 0.5 < front["hypervolume_fraction_from_worst"] <= 1.0
    assert 0.0 <= front["space_front_found"] <= front["space_front_within_epsilon"] <= 1.0
    assert front["space_front_found"] <= front["space_front_evaluated"]
    assert front["space_reference"][0] == pytest.approx(float(np.median(
        TRUTH.space_values())))
    assert (out / f"front_{name}.png").stat().st_size > 10_000
    assert "vs the space's true front" in (out / "summary.md").read_text()
    assert 0.5 < front["coverage_of_evaluated"] <= 1.0


def test_a_fitness_equal_to_the_truth_plots_its_correlation(tmp_path):
    """Labelled by the truth itself (the diagnostic arm of experiments/multi_objective.py),
    Spearman is 0.9999999999999999 with the bootstrap interval [1.0, 1.0]."""
    metrics = {"spearman": 0.9999999999999999, "spearman_ci": [1.0, 1.0]}
    fig = plot_correlation_vs_budget({"estimators": ["table"], "budgets": [0],
                                      "metrics": {"table": {"0": metrics}}}, tmp_path / "c.png")
    (bars,) = fig.axes[0].containers[-1].lines[2]
    assert np.allclose(bars.get_segments()[0][:, 1], [metrics["spearman"], 1.0])


def test_hypervolume_gains_equal_the_area_each_point_adds():
    rng = np.random.default_rng(0)
    scores, costs = rng.uniform(0, 10, 15).tolist(), rng.uniform(0, 10, 15).tolist()
    new_scores, new_costs = rng.uniform(-1, 12, 40).tolist(), rng.uniform(-1, 12, 40).tolist()
    reference = (2.0, 9.0)
    base = hypervolume(scores, costs, reference)
    expected = [hypervolume([*scores, s], [*costs, c], reference) - base
                for s, c in zip(new_scores, new_costs)]
    gains = hypervolume_gains(scores, costs, reference, new_scores, new_costs)
    np.testing.assert_allclose(gains, expected, atol=1e-9)
    assert (gains == 0).any() and (gains > 0).any()
    # by hand: one point (5, 2) against the reference (0, 10); (6, 1) adds 6 x 1 + 1 x 8 = 14
    assert hypervolume_gains([5.0], [2.0], (0.0, 10.0), [6.0, 4.0], [1.0, 3.0]).tolist() == [
        14.0, 0.0]
