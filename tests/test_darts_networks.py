"""DARTS networks: parameter counts, supernet/sub-network equivalence, weight-inheritance
isolation, gradients of single and multiple paths, channels_last."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import search_spaces
import supernet
from speedynas_core.errors import SpeedyNASError
from search_spaces.darts import CANDIDATE_OPS, DartsArch, edge_index
from supernet import tensor_snapshot
from supernet.darts import DartsNetwork, DartsSupernet, macro_layout

SMALL = {"C": 8, "layers": 5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run fastest (and least disturbed by other processes) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space():
    return search_spaces.create("darts")


@pytest.fixture()
def net() -> DartsSupernet:
    torch.manual_seed(0)
    model = supernet.create_supernet("darts", **SMALL)
    assert isinstance(model, DartsSupernet)
    return model


def archs(space, count: int, seed: int = 0) -> list[DartsArch]:
    return space.sample_many(count, np.random.default_rng(seed))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def formula_params(arch: DartsArch, C: int, layers: int, num_classes: int = 10,
                   auxiliary: bool = False, op_bn_affine: bool = True,
                   preprocess_bn_affine: bool = True) -> int:
    """Independent count from per-op formulas (bias-free convs, affine BN = 2 per channel)."""
    stem = 3 * C
    total = 3 * 3 * 3 * stem + 2 * stem
    for spec in macro_layout(C, layers)[0]:
        c = spec.channels
        # preprocess: FactorizedReduce (two c_in x c/2 1x1 convs) or 1x1 conv, both + BN(c)
        total += spec.c_prev_prev * c + spec.c_prev * c + (4 * c if preprocess_bn_affine else 0)
        bn = 2 * c if op_bn_affine else 0
        for op, inp in arch.cell(spec.reduction):
            k = int(op[-1]) if "conv" in op else 0  # sep_conv_3x3 -> 3
            if op.startswith("sep_conv"):
                total += 2 * (c * k * k + c * c + bn)
            elif op.startswith("dil_conv"):
                total += c * k * k + c * c + bn
            elif op == "skip_connect" and spec.reduction and inp < 2:
                total += c * c + bn  # factorized reduce
    c_out = 4 * macro_layout(C, layers)[0][-1].channels
    total += c_out * num_classes + num_classes
    if auxiliary:
        c_aux = macro_layout(C, layers)[2]
        total += c_aux * 128 + 2 * 128 + 128 * 768 * 2 * 2 + 2 * 768 + 768 * num_classes \
            + num_classes
    return total


# ------------------------------------------------------------------------------------------
# stand-alone network


def test_darts_v2_parameter_count(space):
    arch = space.named("DARTS_V2")
    plain = supernet.build_network(arch)  # defaults: C=36, layers=20
    assert isinstance(plain, DartsNetwork) and (plain.C, plain.layers) == (36, 20)
    # 3.349342M is the count the DARTS code logs for DARTS_V2 (auxiliary head excluded),
    # reported as 3.3M in the paper
    assert n_params(plain) == formula_params(arch, 36, 20) == 3_349_342
    with_aux = supernet.build_network(arch, C=36, layers=20, auxiliary=True)
    assert n_params(with_aux) == formula_params(arch, 36, 20, auxiliary=True) == 3_825_768
    assert n_params(with_aux) - n_params(plain) == n_params(with_aux.auxiliary_head)


def test_parameter_formula_on_random_archs(space):
    for arch in archs(space, 6, seed=1):
        for C, layers in ((16, 8), (8, 5)):
            with torch.device("meta"):
                model = DartsNetwork(arch, C=C, layers=layers, auxiliary=True)
            assert n_params(model) == formula_params(arch, C, layers, auxiliary=True)


def test_parameter_count_matches_naslib_nb301_column(space, nb301_table):
    """NASLib's params_M_naslib (NB301 model: C=32, 8 cells) equals our count minus the
    affine parameters of the BNs inside the ops (NASLib builds those BNs without affine);
    checked on every 20th genotype of the file (all 1,218 agree)."""
    for key in list(nb301_table)[::20]:
        arch = space.parse(key)
        with torch.device("meta"):
            model = DartsNetwork(arch, C=32, layers=8)
        op_bn = sum(p.numel() for name, p in model.named_parameters()
                    if ".ops." in name and p.dim() == 1)
        expected = round(nb301_table[key]["params_M_naslib"] * 1e6)
        assert n_params(model) - op_bn == expected, key
        assert formula_params(arch, 32, 8, op_bn_affine=False) == expected


def test_network_forward_modes(space):
    torch.manual_seed(0)
    arch = space.named("DARTS_V1")
    model = DartsNetwork(arch, num_classes=7, C=8, layers=5, auxiliary=True,
                         drop_path_prob=0.3)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    logits, aux = model(x)
    assert logits.shape == (4, 7) and aux.shape == (4, 7)
    y = torch.zeros(4, dtype=torch.long)
    (F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert not torch.allclose(model(x)[0], model(x)[0])  # drop path is stochastic
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 7)
    assert torch.equal(out, model(x))  # no drop path, no aux in eval mode
    model.drop_path_prob = 0.0
    model.train()
    torch.manual_seed(1)
    a = model(x)[0]
    torch.manual_seed(2)
    assert torch.equal(a, model(x)[0])  # without drop path training forward is deterministic


def test_per_cell_archs_and_odd_sizes(space):
    cell_archs = archs(space, 5, seed=4)
    model = DartsNetwork(cell_archs, C=8, layers=5)
    assert model.archs == cell_archs
    for cell, arch in zip(model.cells, cell_archs):
        assert cell.pairs == arch.cell(cell.reduction)
    assert model(torch.randn(2, 3, 17, 17)).shape == (2, 10)
    with pytest.raises(SpeedyNASError, match="one per cell"):
        DartsNetwork(cell_archs[:4], C=8, layers=5)


# ------------------------------------------------------------------------------------------
# supernet


def test_supernet_structure(net, space):
    assert net.size() == {"num_classes": 10, "C": 8, "layers": 5, "stem_multiplier": 3}
    assert "darts" in supernet.list_supernets()
    again = supernet.create_supernet("darts", **net.size())
    assert n_params(again) == n_params(net)
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]
    for cell in net.cells:
        assert len(cell.edges) == 14 and all(len(edge) == 7 for edge in cell.edges)
        for module in cell.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # search BN policy in cells
                assert not module.affine and not module.track_running_stats
    assert net.stem[1].affine and net.stem[1].track_running_stats


def test_single_path_forward_backward(net, space):
    arch = space.sample(np.random.default_rng(5))
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    F.cross_entropy(net(x, arch), y).backward()
    used = {id(p) for cell in net.cells for m in cell.chosen(arch.cell(cell.reduction))
            for p in m.parameters()}
    for name, p in net.named_parameters():
        if ".edges." in name:  # only the chosen ops ran
            assert (p.grad is not None) == (id(p) in used), name
        else:
            assert p.grad is not None, name
    assert torch.isfinite(net(x, str(arch))).all()  # text is accepted too
    nb201_arch = search_spaces.create("nb201").sample(np.random.default_rng(0))
    with pytest.raises(SpeedyNASError):
        net(x, nb201_arch)


def test_subnet_holds_copies_of_exactly_the_chosen_ops(net, space):
    for arch in [space.named("DARTS_V2"), archs(space, 5, seed=9)]:
        sub = net.extract(arch)
        assert isinstance(sub, DartsNetwork)
        pairs = [(sub.stem, net.stem), (sub.classifier, net.classifier)]
        for i, (cell, a) in enumerate(zip(net.cells, sub.archs)):
            chosen = a.cell(cell.reduction)
            assert sub.cells[i].pairs == chosen
            pairs += [(sub.cells[i].preprocess0, cell.preprocess0),
                      (sub.cells[i].preprocess1, cell.preprocess1)]
            pairs += [(sub.cells[i].ops[p], cell.edges[edge_index(p // 2, inp)][
                CANDIDATE_OPS.index(op)]) for p, (op, inp) in enumerate(chosen)]
        copied = 0
        for ours, theirs in pairs:
            assert type(ours) is type(theirs)
            mine, other = ours.state_dict(), theirs.state_dict()
            assert mine.keys() == other.keys()
            for key in mine:
                assert torch.equal(mine[key], other[key])
                assert mine[key].data_ptr() != other[key].data_ptr()
            copied += n_params(ours)
        assert copied == n_params(sub)
        # the same network as a fresh search-BN DartsNetwork of these sizes
        fresh = DartsNetwork(arch, bn="search", **SMALL)
        assert {k: v.shape for k, v in fresh.state_dict().items()} == \
            {k: v.shape for k, v in sub.state_dict().items()}
        if isinstance(arch, DartsArch):
            assert n_params(sub) == formula_params(arch, 8, 5, op_bn_affine=False,
                                                   preprocess_bn_affine=False)


@pytest.mark.parametrize("size", [16, 32])
def test_supernet_equals_extracted_subnet(net, space, size):
    x = torch.randn(6, 3, size, size)
    net.train()
    for _ in range(2):  # give the stem's running statistics non-trivial values
        net(torch.randn(8, 3, size, size) * 2 + 1, space.sample(np.random.default_rng(0)))
    cases = archs(space, 3, seed=size) + [archs(space, 5, seed=size + 1)]  # last: per cell
    for arch in cases:
        for train in (True, False):
            net.train(train)
            sub = net.extract(arch)
            assert sub.training == train
            assert n_params(sub) < n_params(net) / 4
            assert torch.allclose(net(x, arch), sub(x), rtol=0, atol=1e-6)


def test_training_extracted_subnet_leaves_supernet_bit_identical(net, space):
    arch = space.sample(np.random.default_rng(11))
    net.train()
    before = tensor_snapshot(net)
    sub = net.extract(arch)
    sub_before = tensor_snapshot(sub)
    opt = torch.optim.SGD(sub.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    for step in range(3):
        x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
        opt.zero_grad()
        F.cross_entropy(sub(x), y).backward()
        opt.step()
    after = tensor_snapshot(net)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    changed = [k for k, v in tensor_snapshot(sub).items() if not torch.equal(v, sub_before[k])]
    assert any(".ops." in k for k in changed) and "stem.1.running_mean" in changed


def test_multi_path_gradient_accumulation(net, space):
    paths = archs(space, 3, seed=21)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    net.train()
    for path in paths:  # accumulate, as the FairNAS / MultiPaths samplers do
        (F.cross_entropy(net(x, path), y) / len(paths)).backward()
    accumulated = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    sum(F.cross_entropy(net(x, path), y) for path in paths).div(len(paths)).backward()
    joint = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    assert accumulated.keys() == joint.keys() and len(joint) > 0
    for name in joint:
        assert torch.allclose(accumulated[name], joint[name], rtol=1e-5, atol=1e-7), name


def test_channels_last_matches_contiguous(net, space):
    arch = space.sample(np.random.default_rng(31))
    x = torch.randn(4, 3, 32, 32)
    fast = copy.deepcopy(net).to(memory_format=torch.channels_last)
    sub = net.extract(arch)
    sub_fast = net.extract(arch).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for train in (True, False):
        for model in (net, fast, sub, sub_fast):
            model.train(train)
        ref = net(x, arch)
        assert torch.allclose(fast(x_cl, arch), ref, rtol=1e-4, atol=1e-5)
        assert torch.allclose(sub_fast(x_cl), ref, rtol=1e-4, atol=1e-5)
        assert torch.allclose(sub(x_cl), ref, rtol=1e-4, atol=1e-5)
    fast.train()
    F.cross_entropy(fast(x_cl, arch), torch.zeros(4, dtype=torch.long)).backward()
