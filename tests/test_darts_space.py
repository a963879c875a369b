"""The DARTS search space: genotype text round-trip, parse errors, sampling, mutation, names."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import search_spaces
from speedynas_core.errors import SpeedyNASError
from search_spaces import ArchParseError
from search_spaces.darts import CANDIDATE_OPS, DartsArch, DartsSpace, edge_index

SHARED = Path(__file__).resolve().parents[2] / "shared"
NB301 = SHARED / "benchmarks" / "darts_nb301_surrogate_naslib.json"

V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
      "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
      "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
      "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
      "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
      "reduce_concat=[2, 3, 4, 5])")
VALID_OPS = "valid ops: max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, " \
            "dil_conv_3x3, dil_conv_5x5"


@pytest.fixture(scope="module")
def space() -> DartsSpace:
    return search_spaces.create("darts")


def nb301_keys() -> list[str]:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return list(json.loads(NB301.read_text())["archs"])  # missing file inside shared: fails


def choices(arch: DartsArch) -> list[tuple[str, int, str, object]]:
    """Every single choice of a genotype: (cell, pair position, 'op' | 'input', value)."""
    return [(cell, pos, kind, pair[k]) for cell in ("normal", "reduce")
            for pos, pair in enumerate(getattr(arch, cell))
            for k, kind in enumerate(("op", "input"))]


def test_registered(space):
    assert "darts" in search_spaces.list_spaces()
    assert isinstance(space, DartsSpace) and space.name == "darts"
    assert space.ops == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                         "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert search_spaces.space_of(space.parse(V2)).name == "darts"


def test_every_nb301_key_round_trips(space):
    keys = nb301_keys()
    assert len(keys) == 1218
    archs = [space.parse(key) for key in keys]
    assert [str(a) for a in archs] == keys
    assert len(set(archs)) == len(keys)  # hashing / equality agree with the text


def test_round_trip_with_whitespace_and_alternative_forms(space):
    arch = space.parse(V2)
    assert str(arch) == V2
    assert space.parse("\n  " + V2 + "  \t\n") == arch
    assert space.parse(V2.replace("'", '"')) == arch
    assert space.parse(V2.replace("[2, 3, 4, 5]", "range(2, 6)")) == arch
    assert space.parse(V2.replace(", ", ",").replace("=", " = ")) == arch


def test_arch_value_semantics(space):
    arch = space.parse(V2)
    assert arch.space_name == "darts"
    assert arch == space.parse(str(arch)) and hash(arch) == hash(space.parse(str(arch)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.normal = ()  # type: ignore[misc]
    built = DartsArch(normal=[list(p) for p in arch.normal], reduce=list(arch.reduce),
                      normal_concat=[2, 3, 4, 5], reduce_concat=range(2, 6))
    assert built == arch and isinstance(built.normal, tuple) and str(built) == V2
    with pytest.raises(ArchParseError, match="must differ"):
        DartsArch(normal=arch.normal[:1] + (("sep_conv_3x3", 0),) + arch.normal[2:],
                  reduce=arch.reduce)
    for bad in [("sep_conv_3x3",), ("sep_conv_3x3", "0"), (3, 0), ("sep_conv_3x3", True)]:
        with pytest.raises(ArchParseError):
            DartsArch(normal=(bad,) + arch.normal[1:], reduce=arch.reduce)
    # pair order inside a node is kept; canonical() sorts it away
    swapped = DartsArch(normal=(arch.normal[1], arch.normal[0]) + arch.normal[2:],
                        reduce=arch.reduce)
    assert swapped != arch and swapped.canonical() == arch.canonical()


def _bad(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text
    return text.replace(old, new, count)


TWO_PAIRS = "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
BAD_STRINGS = [
    ("", ["empty architecture text", "Genotype(normal="]),
    ("   \n ", ["empty architecture text"]),
    (_bad(V2, "'sep_conv_3x3', 0", "'sep_conv_7x7', 0"),
     ["unknown op 'sep_conv_7x7'", "normal pair 0", VALID_OPS]),
    (_bad(V2, "('max_pool_3x3', 1)", "('conv_3x3', 1)"),
     ["unknown op 'conv_3x3'", "reduce pair 1", VALID_OPS]),
    (_bad(V2, "('dil_conv_3x3', 2)", "('none', 2)"),
     ["op 'none'", "normal pair 7", "never hold 'none'", VALID_OPS]),
    (_bad(V2, TWO_PAIRS, "('sep_conv_3x3', 0), "),
     ["normal has 7 (op, input) pairs", "expected 8"]),
    (_bad(V2, TWO_PAIRS, TWO_PAIRS + "('sep_conv_3x3', 0), "),
     ["normal has 9 (op, input) pairs", "expected 8"]),
    (_bad(V2, "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ", "reduce=["),
     ["reduce has 6 (op, input) pairs", "expected 8"]),
    (_bad(V2, "('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)"),
     ["input 2 of normal pair 1 is out of range", "node 0 takes inputs 0..1"]),
    (_bad(V2, "('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
     ["input 5 of normal pair 7 is out of range", "node 3 takes inputs 0..4"]),
    (_bad(V2, "('sep_conv_3x3', 0)", "('sep_conv_3x3', -1)"),
     ["input -1 of normal pair 0 is out of range", "node 0 takes inputs 0..1"]),
    (_bad(V2, "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2)",
          "('max_pool_3x3', 0), ('skip_connect', 4), ('skip_connect', 2)"),
     ["input 4 of reduce pair 5 is out of range", "node 2 takes inputs 0..3"]),
    (_bad(V2, "('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)"),
     ["node 0 of normal takes input 0 twice", "must differ", "0..1"]),
    (_bad(V2, "normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4]"),
     ["normal_concat [2, 3, 4] is not supported", "[2, 3, 4, 5]"]),
    (_bad(V2, "reduce_concat=[2, 3, 4, 5]", "reduce_concat=range(2, 7)"),
     ["reduce_concat [2, 3, 4, 5, 6] is not supported", "[2, 3, 4, 5]"]),
    (_bad(V2, ", reduce_concat=[2, 3, 4, 5]", ""),
     ["missing field 'reduce_concat'", "normal, normal_concat, reduce, reduce_concat"]),
    (_bad(V2, "normal_concat=[2, 3, 4, 5], ", ""),
     ["missing field 'normal_concat'", "normal, normal_concat, reduce, reduce_concat"]),
    (V2 + " extra", ["trailing text 'extra'", "after the closing ')'"]),
    (V2 + ")", ["trailing text ')'"]),
    (V2 + "; import os", ["unexpected character ';'"]),
    (_bad(V2, "reduce_concat=", "reduce_cat="),
     ["unknown field 'reduce_cat'", "valid fields: normal, normal_concat, reduce, reduce_concat"]),
    (_bad(V2, "reduce=", "normal="), ["field 'normal' given twice"]),
    (_bad(V2, "Genotype(", "Genotipe("), ["expected 'Genotype'", "'Genotipe'"]),
    (_bad(V2, "('sep_conv_3x3', 0)", "(sep_conv_3x3, 0)"),
     ["expected a quoted op name in normal pair 0", "'sep_conv_3x3'", VALID_OPS]),
    (_bad(V2, "('sep_conv_3x3', 0)", "('sep_conv_3x3', zero)"),
     ["expected an integer as the input of normal pair 0", "'zero'"]),
    (V2[:-1], ["expected ')'", "end of text"]),
    (V2[:60], ["end of text"]),
    ("__import__('os').system('echo pwned')", ["expected 'Genotype'", "'__import__'"]),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", ["unexpected character '|'"]),
]


@pytest.mark.parametrize("text,fragments", BAD_STRINGS, ids=range(len(BAD_STRINGS)))
def test_bad_strings_name_token_and_choices(space, text, fragments):
    with pytest.raises(ArchParseError) as info:
        space.parse(text)
    assert isinstance(info.value, SpeedyNASError)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_non_string_is_rejected(space):
    with pytest.raises(ArchParseError, match="expected genotype text"):
        space.parse(None)  # type: ignore[arg-type]


def test_sample_valid_deterministic_and_covering(space):
    draws = space.sample_many(600, np.random.default_rng(7))
    again = space.sample_many(600, np.random.default_rng(7))
    assert draws == again
    assert draws != space.sample_many(600, np.random.default_rng(8))
    op_counts: Counter = Counter()
    input_pairs: Counter = Counter()
    for arch in draws:
        assert isinstance(arch, DartsArch) and space.parse(str(arch)) == arch
        for cell in (arch.normal, arch.reduce):
            assert len(cell) == 8 and all(op != "none" for op, _ in cell)
            for node in range(4):
                (op_a, a), (op_b, b) = cell[2 * node: 2 * node + 2]
                assert 0 <= a < b <= node + 1  # distinct, written in ascending order
                input_pairs[node, a, b] += 1
                op_counts[op_a] += 1
                op_counts[op_b] += 1
    assert set(op_counts) == set(CANDIDATE_OPS)
    expected = 600 * 16 / 7
    assert all(abs(n - expected) < 0.1 * expected for n in op_counts.values()), op_counts
    for node in range(4):  # every unordered input pair of each node, roughly uniformly
        pairs = {(a, b) for a in range(node + 2) for b in range(a + 1, node + 2)}
        counts = [input_pairs[node, a, b] for a, b in pairs]
        assert min(counts) > 0.6 * 1200 / len(pairs), (node, counts)
    assert len(set(draws)) > 590  # the space is huge: duplicates are rare


def test_mutate_changes_exactly_one_choice(space):
    rng = np.random.default_rng(3)
    kinds: Counter = Counter()
    for _ in range(400):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert child != arch and space.parse(str(child)) == child
        diff = [(a, b) for a, b in zip(choices(arch), choices(child)) if a != b]
        assert len(diff) == 1, diff
        (cell, pos, kind, _), _ = diff[0]
        kinds[cell, kind] += 1
        node = getattr(child, cell)[pos // 2 * 2: pos // 2 * 2 + 2]
        assert node[0][1] != node[1][1]
    assert set(kinds) == {("normal", "op"), ("normal", "input"), ("reduce", "op"),
                          ("reduce", "input")}
    # mutation chains stay valid; strings also accepted
    arch = space.named("DARTS_V2")
    for _ in range(50):
        arch = space.mutate(str(arch), rng)
        assert space.parse(str(arch)) == arch


def test_fair_paths_use_every_op_once_per_slot(space):
    rng = np.random.default_rng(13)
    assert [str(a) for a in space.fair_paths(np.random.default_rng(2))] == \
        [str(a) for a in space.fair_paths(np.random.default_rng(2))]
    seen_inputs = set()
    for _ in range(30):
        paths = space.fair_paths(rng)
        assert len(paths) == 7 and len(set(paths)) == 7
        for cell in ("normal", "reduce"):
            cells = [getattr(p, cell) for p in paths]
            inputs = [inp for _, inp in cells[0]]
            seen_inputs.add((cell, tuple(inputs)))
            for pos in range(8):
                assert {c[pos][1] for c in cells} == {inputs[pos]}  # inputs drawn once
                assert sorted(c[pos][0] for c in cells) == sorted(CANDIDATE_OPS)
        for p in paths:
            assert space.parse(str(p)) == p
    assert len(seen_inputs) > 30  # inputs are redrawn every step


def test_neighbours_are_all_single_changes(space):
    arch = space.named("DARTS_V1")
    neighbours = space.neighbours(arch)
    # per cell: 8 pairs x 6 other ops + sum over nodes k of 2 * k alternative inputs
    assert len(neighbours) == 2 * (8 * 6 + 2 * (0 + 1 + 2 + 3)) == 120
    assert len(set(neighbours)) == 120 and arch not in neighbours


def test_named_genotypes(space):
    names = space.named_genotypes()
    assert {"DARTS_V1", "DARTS_V2"} <= set(names)
    for name in names:
        arch = space.named(name)
        assert space.parse(str(arch)) == arch and str(space.parse(str(arch))) == str(arch)
    assert str(space.named("DARTS_V2")) == V2
    v1 = space.named("DARTS_V1")
    assert v1.normal[:2] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 0))
    assert v1.reduce[-1] == ("avg_pool_3x3", 0)
    with pytest.raises(SpeedyNASError) as info:
        space.named("DARTS_V3")
    assert "'DARTS_V3'" in str(info.value) and "DARTS_V1" in str(info.value) \
        and "DARTS_V2" in str(info.value)


def test_edge_index_enumerates_the_14_edges():
    edges = [edge_index(node, inp) for node in range(4) for inp in range(node + 2)]
    assert edges == list(range(14))


def test_encoding_counts_each_cells_op_input_pairs(space):
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    for arch in archs:
        code = space.encode(arch).reshape(2, 14, 7)
        assert code.sum() == 16 and (code.sum(axis=(1, 2)) == 8).all()
        assert space.encode(arch.canonical()).tolist() == code.ravel().tolist()
        assert code[0, 0].sum() + code[0, 1].sum() == 2  # node 0: its two inputs
    codes = {tuple(space.encode(a.canonical())) for a in archs}
    assert len(codes) == len({a.canonical() for a in archs})
