"""NAS-Bench-201 space: text round-trips, enumeration, degeneracy and isomorphism vs the table."""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pytest

import search_spaces
from speedynas_core.errors import SpeedyNASError
from search_spaces import ArchParseError
from search_spaces.nb201 import OPS

SPACE = search_spaces.create("nb201")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_registry_lists_both_spaces_and_rejects_unknown():
    assert {"nb201", "darts"} <= set(search_spaces.list_spaces())
    with pytest.raises(SpeedyNASError, match=r"unknown search space 'nb101'; registered: .*nb201"):
        search_spaces.create("nb101")


def test_every_table_string_round_trips(nb201_table):
    for text in nb201_table:
        assert str(SPACE.parse(text)) == text


def test_arch_is_immutable_and_hashable():
    arch = SPACE.parse(BEST)
    assert hash(arch) == hash(SPACE.parse(BEST)) and arch == SPACE.parse(BEST)
    assert arch.op(3, 0) == "skip_connect" and arch.space_name == "nb201"
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.ops = ("none",) * 6


def test_enumeration_is_the_whole_space_in_documented_order(nb201_table):
    archs = list(SPACE.enumerate())
    assert len(archs) == len(set(archs)) == 15625 == len(SPACE)
    assert {str(a) for a in archs} == set(nb201_table)
    assert [SPACE.index_of(a) for a in archs] == list(range(15625))
    assert archs[0].ops == ("none",) * 6 and archs[-1].ops == ("avg_pool_3x3",) * 6
    assert archs[1].ops == ("none",) * 5 + ("skip_connect",)


def test_degenerate_cells_are_exactly_the_tables_ten_percent_archs(nb201_table):
    degenerate = {str(a) for a in SPACE.enumerate() if SPACE.is_degenerate(a)}
    at_chance = {k for k, v in nb201_table.items() if abs(v["cifar10_test"] - 10.0) < 1e-6}
    assert len(degenerate) == 341
    assert degenerate == at_chance


def test_canonical_form_matches_the_tables_isomorphism_classes(nb201_table):
    by_form: dict[str, set[str]] = defaultdict(set)
    by_class: dict[int, set[str]] = defaultdict(set)
    for text, row in nb201_table.items():
        by_form[SPACE.canonical_form(SPACE.parse(text))].add(text)
        by_class[row["iso_class"]].add(text)
    assert len(by_form) == 6466
    assert {frozenset(s) for s in by_form.values()} == {frozenset(s) for s in by_class.values()}


def test_sample_is_seeded_and_uniform_over_ops():
    draws = SPACE.sample_many(4000, np.random.default_rng(7))
    assert draws == SPACE.sample_many(4000, np.random.default_rng(7))
    assert draws != SPACE.sample_many(4000, np.random.default_rng(8))
    for edge in range(6):
        counts = Counter(a.ops[edge] for a in draws)
        assert set(counts) == set(OPS)
        assert all(abs(c / 4000 - 0.2) < 0.03 for c in counts.values())


def test_mutate_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    arch = SPACE.parse(BEST)
    changed_edges = set()
    for _ in range(500):
        child = SPACE.mutate(arch, rng)
        diff = [i for i in range(6) if child.ops[i] != arch.ops[i]]
        assert len(diff) == 1 and str(SPACE.parse(str(child))) == str(child)
        changed_edges.update(diff)
        arch = child
    assert changed_edges == set(range(6))


def test_neighbours_are_the_24_single_edge_changes_and_cover_every_mutation():
    arch = SPACE.parse(BEST)
    neighbours = SPACE.neighbours(arch)
    assert len(neighbours) == len(set(neighbours)) == 6 * 4 and arch not in neighbours
    assert all(sum(a != b for a, b in zip(n.ops, arch.ops)) == 1 for n in neighbours)
    rng = np.random.default_rng(1)
    assert {SPACE.mutate(arch, rng) for _ in range(1000)} == set(neighbours)


@pytest.mark.parametrize("text, message", [
    ("", "empty NB201 arch string"),
    ("   ", "empty NB201 arch string"),
    ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "unknown NB201 op 'conv_3x3'.*valid ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"),
    ("|none~0|+|none~0|none~1|", "has 2 node groups.*expected 3"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "has 4 node groups"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 group '|none~0|' has 1 edges; expected 2"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "node 3 group .* has 4 edges"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "bad input index '1'.*must read input 0"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "bad input index '0'.*must read input 1"),
    ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "bad NB201 edge token 'none'.*op~input"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "bad NB201 node group 'none~0|'"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|xyz", "bad NB201 node group '|none~0|none~1|none~2|xyz'"),
])
def test_bad_strings_name_the_bad_token(text, message):
    with pytest.raises(ArchParseError) as error:
        SPACE.parse(text)
    for fragment in message.split(".*"):
        assert fragment in str(error.value)
    assert issubclass(ArchParseError, ValueError)


def test_from_ops_validates():
    assert str(SPACE.from_ops(SPACE.parse(BEST).ops)) == BEST
    with pytest.raises(ArchParseError, match="unknown NB201 op 'conv'"):
        SPACE.from_ops(["conv"] * 6)
    with pytest.raises(ArchParseError, match="needs 6 edge ops, got 2"):
        SPACE.from_ops(["none"] * 2)


def test_encoding_is_one_hot_per_edge_and_tells_every_cell_apart():
    codes = {tuple(SPACE.encode(arch)) for arch in SPACE.enumerate()}
    assert len(codes) == len(SPACE)  # 15,625 distinct codes
    arch = SPACE.sample(np.random.default_rng(0))
    code = SPACE.encode(arch).reshape(6, len(OPS))
    assert (code.sum(axis=1) == 1).all()
    assert [OPS[i] for i in code.argmax(axis=1)] == list(arch.ops)
