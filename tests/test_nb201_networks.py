"""NB201 stand-alone network and supernet: parameter counts vs the table, weight inheritance."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import search_spaces
import supernet
from search_spaces.nb201 import OPS
from supernet import tensor_snapshot
from supernet.measure import arch_flops, arch_parameters, count_parameters
from supernet.nb201 import NB201SuperCell

SPACE = search_spaces.create("nb201")
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_stand_alone_parameter_counts_equal_the_table(nb201_table):
    rng = np.random.default_rng(2021)
    names = sorted(nb201_table)
    for index in rng.choice(len(names), size=300, replace=False):
        text = names[index]
        assert arch_parameters(SPACE.parse(text)) == nb201_table[text]["params_cifar10"], text


def test_real_network_matches_meta_count_and_class_offset(nb201_table):
    arch = SPACE.parse(ALL_CONV3)
    assert count_parameters(supernet.build_network(arch)) == nb201_table[ALL_CONV3]["params_cifar10"]
    # The table documents +65 parameters per extra class (64 weights + 1 bias).
    assert arch_parameters(arch, num_classes=100) == nb201_table[ALL_CONV3]["params_cifar10"] + 65 * 90


def test_flops_match_the_benchmarks_published_macs():
    # NB201 reports 220.11969 MFLOPs (multiply-accumulates) for this cell; we count 2 per MAC.
    assert arch_flops(SPACE.parse(ALL_CONV3)) == pytest.approx(2 * 220.11969e6, rel=1e-5)
    empty = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert arch_flops(empty) < arch_flops(SPACE.parse(ALL_CONV3))


def _small_supernet(seed: int = 0) -> supernet.Supernet:
    torch.manual_seed(seed)
    net = supernet.create_supernet("nb201", C=8, N=2)
    # Give the stem/reduction BN non-trivial running statistics, as after training.
    with torch.no_grad():
        net.train()
        for _ in range(2):
            net(torch.randn(8, 3, 16, 16), SPACE.sample(np.random.default_rng(_)))
    return net


@pytest.mark.parametrize("training", [True, False])
def test_extracted_subnet_computes_what_the_supernet_computes(training):
    net = _small_supernet().train(training)
    rng = np.random.default_rng(1)
    x = torch.randn(4, 3, 16, 16)
    archs = SPACE.sample_many(6, rng) + [SPACE.sample_many(6, rng)]  # last: one arch per cell
    for arch in archs:
        sub = net.extract(arch)
        assert sub.training == training
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=1e-6)


def test_subnet_holds_copies_of_exactly_the_chosen_ops():
    net = _small_supernet()
    arch = SPACE.parse("|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    sub = net.extract(arch)
    pairs = [(sub.stem, net.stem), (sub.lastact, net.lastact), (sub.classifier, net.classifier)]
    for k, block in enumerate(net.cells):
        if isinstance(block, NB201SuperCell):
            pairs += [(sub.cells[k].edges[e], block.edges[e][OPS.index(op)])
                      for e, op in enumerate(arch.ops)]
        else:
            pairs.append((sub.cells[k], block))
    copied = 0
    for sub_module, super_module in pairs:
        ours, theirs = sub_module.state_dict(), super_module.state_dict()
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key])
            assert ours[key].data_ptr() != theirs[key].data_ptr()
        copied += sum(p.numel() for p in sub_module.parameters())
    assert copied == count_parameters(sub)
    # Exactly the stand-alone network's parameters less the cells' BN affine weights (2 x 2C x 3
    # cells x 2 conv edges, channels 8/16/32 in the three stages).
    standalone = arch_parameters(arch, C=8, N=2)
    assert count_parameters(sub) == standalone - sum(2 * 2 * c * 2 for c in (8, 16, 32))
    assert not any(bn.affine for bn in sub.cells[0].modules() if isinstance(bn, torch.nn.BatchNorm2d))


def test_fine_tuning_a_subnet_leaves_the_supernet_bit_identical():
    net = _small_supernet()
    before = tensor_snapshot(net)
    for arch in SPACE.sample_many(3, np.random.default_rng(3)):
        sub = net.extract(arch).train()
        optim = torch.optim.SGD(sub.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
        for _ in range(3):
            loss = F.cross_entropy(sub(torch.randn(8, 3, 16, 16)), torch.randint(0, 10, (8,)))
            optim.zero_grad()
            loss.backward()
            optim.step()
        assert not torch.equal(sub.classifier.weight, net.classifier.weight)
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_forward_backward_reaches_only_the_chosen_ops():
    net = _small_supernet()
    arch = SPACE.parse("|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    loss = F.cross_entropy(net(torch.randn(4, 3, 16, 16), arch), torch.randint(0, 10, (4,)))
    loss.backward()
    cell = net.cells[0]
    assert cell.edges[0][2][1].weight.grad is not None      # nor_conv_1x1 on edge 1<-0
    assert cell.edges[0][3][1].weight.grad is None          # nor_conv_3x3 on edge 1<-0 unused
    assert cell.edges[4][3][1].weight.grad is not None      # nor_conv_3x3 on edge 3<-1
    assert net.classifier.weight.grad is not None


def test_multi_path_gradient_accumulation_equals_summed_loss():
    net = _small_supernet()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    paths = SPACE.sample_many(4, np.random.default_rng(4))
    for arch in paths:  # FairNAS/MultiPaths style: scale by 1/m, backward per path
        (F.cross_entropy(net(x, arch), y) / len(paths)).backward()
    accumulated = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    (sum(F.cross_entropy(net(x, arch), y) for arch in paths) / len(paths)).backward()
    summed = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
    assert accumulated.keys() == summed.keys()
    for name in summed:
        torch.testing.assert_close(accumulated[name], summed[name], rtol=1e-5, atol=1e-7)


def test_channels_last_gives_the_same_outputs():
    net = _small_supernet().eval()
    arch = SPACE.parse(ALL_CONV3)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        reference = net(x, arch)
        net = net.to(memory_format=torch.channels_last)
        out = net(x.to(memory_format=torch.channels_last), arch)
        sub_out = net.extract(arch)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sub_out, out, rtol=0, atol=1e-6)


def test_per_cell_arch_list_must_match_cell_count():
    net = _small_supernet()
    with pytest.raises(ValueError, match="list of 6"):
        net(torch.randn(2, 3, 16, 16), [SPACE.parse(ALL_CONV3)] * 5)
