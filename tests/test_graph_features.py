"""Graph features of NB201 and DARTS cells: hand-computed values, the whole NB201 space, and
invariance over NB201 isomorphism classes."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import search_spaces
from search_spaces import SearchSpace
from search_spaces.graph_features import CellGraph, io_paths

NB201 = search_spaces.create("nb201")
DARTS = search_spaces.create("darts")
NB201_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_KEYS = (
    ["count_none"] + [f"count_{op}" for op in NB201_OPS]
    + [f"min_path_{op}" for op in NB201_OPS] + [f"max_path_{op}" for op in NB201_OPS]
    + [f"paths_{op}" for op in NB201_OPS]
    + ["in_degree_1", "in_degree_2", "in_degree_3", "out_degree_0", "out_degree_1",
       "out_degree_2", "dead_edges"])

DARTS_KEYS = [f"{cell}_{key}" for cell in ("normal", "reduce") for key in (
    [f"{kind}_{op}" for kind in ("count", "min_path", "max_path", "paths")
     for op in DARTS.candidate_ops]
    + [f"out_degree_{node}" for node in range(5)] + ["dead_edges"])]


def nb201(text: str) -> dict[str, float]:
    """The graph features of the NB201 cell written as ``text``."""
    return NB201.graph_features(NB201.parse(text))


def zeros_but(keys: list[str], **values: float) -> dict[str, float]:
    """Every key 0 except ``values``."""
    assert set(values) <= set(keys)
    return dict.fromkeys(keys, 0.0) | values


def test_all_none_cell_has_only_none_edges():
    features = nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert list(features) == NB201_KEYS
    assert features == zeros_but(NB201_KEYS, count_none=6)


def test_all_conv3x3_cell_has_four_paths_of_lengths_1_2_2_3():
    features = nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                     "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert features == zeros_but(
        NB201_KEYS, count_nor_conv_3x3=6, min_path_nor_conv_3x3=1, max_path_nor_conv_3x3=3,
        paths_nor_conv_3x3=4, in_degree_1=1, in_degree_2=2, in_degree_3=3, out_degree_0=3,
        out_degree_1=2, out_degree_2=1)


def test_chain_cell_has_one_path_of_three_edges():
    features = nb201("|skip_connect~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|")
    chain = {f"{kind}_{op}": value for op in ("skip_connect", "nor_conv_1x1", "avg_pool_3x3")
             for kind, value in (("count", 1), ("min_path", 3), ("max_path", 3), ("paths", 1))}
    assert features == zeros_but(
        NB201_KEYS, count_none=3, **chain, in_degree_1=1, in_degree_2=1, in_degree_3=1,
        out_degree_0=1, out_degree_1=1, out_degree_2=1)


def test_edges_off_every_path_are_dead_and_join_no_path():
    # 2<-0 leads nowhere (3<-2 is none); 2<-1 and 3<-1 leave node 1, which 0 never reaches.
    features = nb201("|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|skip_connect~1|"
                     "none~2|")
    assert features == zeros_but(
        NB201_KEYS, count_none=2, count_skip_connect=1, count_nor_conv_1x1=1,
        count_nor_conv_3x3=1, count_avg_pool_3x3=1, min_path_nor_conv_1x1=1,
        max_path_nor_conv_1x1=1, paths_nor_conv_1x1=1, in_degree_2=2, in_degree_3=2,
        out_degree_0=2, out_degree_1=2, dead_edges=3)


def test_darts_v2_features_by_hand():
    features = DARTS.graph_features(DARTS.named("DARTS_V2"))
    assert list(features) == DARTS_KEYS
    # Normal: 9 paths, 0-2 1-2 0-3 1-3 1-4 (sep), 0-4 0-5 (skip), 0-2-5 1-2-5 (sep, dil).
    normal = dict(count_skip_connect=2, count_sep_conv_3x3=5, count_dil_conv_3x3=1,
                  min_path_skip_connect=1, max_path_skip_connect=1, paths_skip_connect=2,
                  min_path_sep_conv_3x3=1, max_path_sep_conv_3x3=2, paths_sep_conv_3x3=7,
                  min_path_dil_conv_3x3=2, max_path_dil_conv_3x3=2, paths_dil_conv_3x3=2,
                  out_degree_0=4, out_degree_1=3, out_degree_2=1)
    # Reduce: 11 paths, all through a max pool; 0-2-x and 1-2-x for x = 3, 4, 5 add a skip.
    reduce = dict(count_max_pool_3x3=5, count_skip_connect=3, min_path_max_pool_3x3=1,
                  max_path_max_pool_3x3=2, paths_max_pool_3x3=11, min_path_skip_connect=2,
                  max_path_skip_connect=2, paths_skip_connect=6, out_degree_0=2,
                  out_degree_1=3, out_degree_2=3)
    expected = {f"normal_{k}": v for k, v in normal.items()}
    expected |= {f"reduce_{k}": v for k, v in reduce.items()}
    assert features == zeros_but(DARTS_KEYS, **expected)
    assert DARTS.graph_features(str(DARTS.named("DARTS_V2"))) == features


def test_a_path_may_run_through_an_output_to_a_later_one():
    graph = CellGraph(3, ((0, 1, "a"), (1, 2, "b"), (0, 2, "c")), inputs=(0,), outputs=(1, 2))
    assert io_paths(graph) == [(0,), (0, 1), (2,)]


def test_every_nb201_cell_gives_finite_features_with_the_same_keys():
    archs = list(NB201.enumerate())
    features = [NB201.graph_features(a) for a in archs]
    assert all(list(f) == NB201_KEYS for f in features)
    table = np.array([list(f.values()) for f in features])
    assert table.shape == (15625, len(NB201_KEYS)) and np.isfinite(table).all()
    # Without none edges every edge lies on an input-output path, so none is dead.
    no_none = table[:, NB201_KEYS.index("count_none")] == 0
    assert (table[no_none, NB201_KEYS.index("dead_edges")] == 0).all()
    # Degenerate cells (input never reaches output) have no input-output path at all.
    paths = table[:, [NB201_KEYS.index(f"paths_{op}") for op in NB201_OPS]].sum(axis=1)
    degenerate = np.array([NB201.is_degenerate(a) for a in archs])
    assert degenerate.sum() == 341 and (paths[degenerate] == 0).all()
    assert (paths[~degenerate] > 0).all()


def test_isomorphic_nb201_cells_share_their_path_counts_through_non_skip_ops():
    """canonical_form writes each input-output path as ``0`` wrapped in its non-skip ops, so
    ``paths_<op>`` is invariant for those ops (skips are transparent, lengths are not)."""
    classes: dict[str, set[tuple[float, ...]]] = defaultdict(set)
    sizes: dict[str, int] = defaultdict(int)
    for arch in NB201.enumerate():
        features = NB201.graph_features(arch)
        form = NB201.canonical_form(arch)
        classes[form].add(tuple(features[f"paths_{op}"] for op in NB201_OPS[1:]))
        sizes[form] += 1
    assert len(classes) == 6466 and max(sizes.values()) > 1
    assert all(len(values) == 1 for values in classes.values())


def test_a_space_without_graph_features_names_itself():
    class Bare(SearchSpace):
        name = "bare"
        parse = sample = mutate = None

    with pytest.raises(NotImplementedError, match="the bare space defines no graph features"):
        Bare().graph_features(None)
