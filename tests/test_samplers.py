"""Path samplers: each one's defining property, for every registered sampler and space."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

import supernet
from search_spaces.nb201 import EDGES, OPS
from supernet.measure import path_parameters
from supernet.methods import list_methods
from supernet.samplers import SAMPLERS, PathSampler, create_sampler, list_samplers

SIZES = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}}
PATH_SAMPLERS = list_samplers()


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {space: supernet.create_supernet(space, **size) for space, size in SIZES.items()}


@pytest.mark.parametrize("space", sorted(SIZES))
@pytest.mark.parametrize("name", PATH_SAMPLERS)
@pytest.mark.parametrize("per_cell", [False, True])
def test_every_sampler_draws_valid_seeded_paths(nets, space, name, per_cell):
    net = nets[space]
    sampler = create_sampler(name, net, per_cell=per_cell)
    first = [sampler.paths(np.random.default_rng(5)) for _ in range(3)]
    again = [sampler.paths(np.random.default_rng(5)) for _ in range(3)]
    assert first == again
    for paths in first:
        assert paths
        for path in paths:
            archs = path if per_cell else [path]
            assert len(archs) == (net.num_search_cells if per_cell else 1)
            for arch in archs:
                assert net.space.parse(str(arch)) == arch
            with torch.no_grad():
                assert net(torch.randn(2, 3, 16, 16), path).shape == (2, 10)


def test_nb201_fairnas_uses_every_op_on_every_edge_once_per_step(nets):
    sampler = create_sampler("fairnas", nets["nb201"])
    rng = np.random.default_rng(0)
    for _ in range(20):
        paths = sampler.paths(rng)
        assert len(paths) == len(OPS)
        for edge in range(len(EDGES)):
            assert sorted(p.ops[edge] for p in paths) == sorted(OPS)


def test_nb201_fairnas_per_cell_is_fair_in_every_cell(nets):
    sampler = create_sampler("fairnas", nets["nb201"], per_cell=True)
    paths = sampler.paths(np.random.default_rng(1))
    for cell in range(nets["nb201"].num_search_cells):
        for edge in range(len(EDGES)):
            assert sorted(p[cell].ops[edge] for p in paths) == sorted(OPS)
    assert len({tuple(str(p[c]) for p in paths) for c in range(3)}) > 1  # cells differ


def test_multipaths_draws_k_paths(nets):
    for k in (1, 3, 4):
        sampler = create_sampler("multipaths", nets["nb201"], num_paths=k)
        assert len(sampler.paths(np.random.default_rng(k))) == k


def test_multipaths_stratified_takes_one_path_per_parameter_quartile(nets):
    net = nets["nb201"]
    sampler = create_sampler("multipaths", net, stratify="params", calibration=200)
    assert len(sampler.edges) == 3 and list(sampler.edges) == sorted(sampler.edges)
    rng = np.random.default_rng(3)
    strata = Counter()
    for _ in range(20):
        paths = sampler.paths(rng)
        counts = [path_parameters(net, p) for p in paths]
        assert [int(np.searchsorted(sampler.edges, c, side="right")) for c in counts] == [0, 1, 2, 3]
        strata.update(range(4))
    assert strata == Counter({0: 20, 1: 20, 2: 20, 3: 20})


def test_unknown_sampler_lists_the_registered_ones(nets):
    with pytest.raises(ValueError, match="unknown sampler 'spos'; registered: fairnas, "
                                         "multipaths, randnas$"):
        create_sampler("spos", nets["nb201"])


def test_samplers_and_gradient_based_methods_are_registered_apart():
    assert all(issubclass(SAMPLERS.get(name), PathSampler) for name in list_samplers())
    assert list_methods() == ["darts", "darts_tse", "drnas", "drnas_tse"]
    assert not set(list_methods()) & set(list_samplers())
