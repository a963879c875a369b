"""The newer zero-cost proxies MeCo and ZiCo against hand-computed values and invariances on tiny
networks, on real NB201 cells (a disconnected one included), and their registration."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces
import supernet
from estimators import create_estimator, list_estimators, needed_records
from estimators.proxies import halves, meco, zico
from speedynas_core.errors import SpeedyNASError
from speedynas_search.finetune import FinetuneBatches, ZeroCostSetup, finetune
from speedynas_search.search_config import FinetuneConfig

from .conftest import linear_layers

NB201 = search_spaces.create("nb201")
#: softmax probability of the larger of two logits that differ by 1.
S = math.e / (1 + math.e)


def _image(*channels: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of one 1-row image with the given channels (each a list over positions)."""
    return (torch.tensor([[[c] for c in channels]], dtype=torch.float32),
            torch.zeros(1, dtype=torch.long))


def _conv(weight: list[list[float]]) -> nn.Conv2d:
    """A bias-free 1x1 convolution: output channel i = sum_j weight[i][j] * input channel j."""
    w = torch.tensor(weight)
    conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(w[:, :, None, None])
    return conv


# --------------------------------------------------------------------------- meco

def test_meco_hand_computed():
    """Channels u = (1, 2, 3, 4), v = (1, 3, 2, 4) over four positions: deviations
    (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5), r = 4 / 5; eigenvalues 1 +- r, min 0.2."""
    batch = _image([1, 2, 3, 4], [1, 3, 2, 4])
    assert meco(_conv([[1, 0], [0, 1]]), batch) == pytest.approx(0.2, abs=1e-12)


def test_meco_of_exactly_correlated_channels_is_zero():
    """Both output channels are multiples of the one input channel: correlation -1, [[1, -1],
    [-1, 1]] has eigenvalues 0 and 2."""
    batch = _image([1.0, 5.0, 2.0, 7.0])
    assert meco(_conv([[1], [-2]]), batch) == pytest.approx(0.0, abs=1e-12)


def test_meco_counts_every_module_output_containers_included():
    """conv then ReLU in a Sequential: the conv's map (0.2, as above), the ReLU's (the same,
    all values positive) and the Sequential's (the ReLU's again)."""
    net = nn.Sequential(_conv([[1, 0], [0, 1]]), nn.ReLU())
    assert meco(net, _image([1, 2, 3, 4], [1, 3, 2, 4])) == pytest.approx(0.6, abs=1e-12)


def test_meco_constant_channel_or_single_position_contributes_zero():
    zeroed = _conv([[1, 0], [0, 0]])  # second output channel constant 0
    assert meco(zeroed, _image([1, 2, 3, 4], [1, 3, 2, 4])) == 0.0
    assert meco(_conv([[1, 0], [0, 1]]), _image([1], [2])) == 0.0  # one position
    # pooled to one position, flattened, linear: no map of more than one position after the conv
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    assert meco(head, _image([1, 2, 3, 4], [1, 3, 2, 4])) == 0.0


def test_meco_uses_only_the_first_image_and_no_labels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 6, 3))
    x = torch.randn(5, 3, 9, 9)
    one = meco(net, (x[:1], torch.zeros(1, dtype=torch.long)))
    assert meco(net, (x, torch.arange(5))) == pytest.approx(one, rel=1e-12)
    assert meco(net, (x.flip(0), torch.arange(5))) != pytest.approx(one, rel=1e-3)
    assert all(not m._forward_hooks for m in net.modules())  # hooks removed


def test_meco_is_invariant_to_channel_order_and_input_scale():
    """Permuting a layer's output channels permutes its correlation matrix (same eigenvalues);
    scaling the input of a bias-free network scales every map (same correlations)."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Conv2d(8, 5, 3, bias=False))
    batch = (torch.randn(1, 3, 10, 10), torch.zeros(1, dtype=torch.long))
    order = torch.randperm(8)
    permuted = copy.deepcopy(net)
    with torch.no_grad():
        permuted[0].weight.copy_(net[0].weight[order])
        permuted[2].weight.copy_(net[2].weight[:, order])
    value = meco(net, batch)
    assert value > 0
    assert meco(permuted, batch) == pytest.approx(value, rel=1e-6)
    assert meco(net, (3.0 * batch[0], batch[1])) == pytest.approx(value, rel=1e-6)


# --------------------------------------------------------------------------- zico

def _two_samples() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of one sample each, label 0: x1 = (1, 2), x2 = (2, 1)."""
    y = torch.tensor([0])
    return [(torch.tensor([[1.0, 2.0]]), y), (torch.tensor([[2.0, 1.0]]), y)]


def test_zico_of_a_linear_layer_hand_computed():
    """W = I: dL/dW = g x^T. x1 = (1, 2): logits (1, 2), g1 = (-S, S); x2 = (2, 1): g2 =
    (-T, T), T = 1 - S. G1 = [[-S, -2S], [S, 2S]], G2 = [[-2T, -T], [2T, T]]. Per weight,
    mean|g| / std(g) over two values a, b is (|a| + |b|) / |a - b|; summed:
    2 (S + 2T) / |S - 2T| + 2 (2S + T) / |2S - T|, and ZiCo is its log."""
    t = 1 - S
    expected = math.log(2 * (S + 2 * t) / abs(S - 2 * t) + 2 * (2 * S + t) / abs(2 * S - t))
    net = linear_layers([[1, 0], [0, 1]])
    assert zico(net, _two_samples()) == pytest.approx(expected, rel=1e-6)
    # the estimator splits its one batch into these two halves
    both = tuple(torch.cat(parts) for parts in zip(*_two_samples()))
    assert create_estimator("zico").measure(net, [both]) == pytest.approx(expected, rel=1e-6)


def test_zico_sums_the_logs_of_the_layers():
    """A two-layer ReLU network is the sum of its layers' terms, and permuting its hidden
    units (rows of W1 with columns of W2) permutes the weights of each term only."""
    torch.manual_seed(2)
    w1, w2 = torch.randn(6, 4), torch.randn(3, 6)
    net = linear_layers(w1.tolist(), w2.tolist(), between=nn.ReLU())
    g = torch.Generator().manual_seed(0)
    minibatches = [(torch.randn(5, 4, generator=g), torch.randint(0, 3, (5,), generator=g))
                   for _ in range(3)]
    value = zico(net, minibatches)
    per_layer = []
    for layer in (net[0], net[2]):
        stacked = []
        for x, y in minibatches:
            net.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            stacked.append(layer.weight.grad.double().flatten())
        s = torch.stack(stacked)
        per_layer.append(math.log(float((s.abs().mean(0) / s.std(0, correction=0)).sum())))
    assert value == pytest.approx(sum(per_layer), rel=1e-12)
    order = torch.randperm(6)
    permuted = linear_layers(w1[order].tolist(), w2[:, order].tolist(), between=nn.ReLU())
    assert zico(permuted, minibatches) == pytest.approx(value, rel=1e-6)


def test_zico_leaves_out_weights_whose_gradient_does_not_vary():
    """The same minibatch twice: every std is 0, no layer is left, the score is 0."""
    net = linear_layers([[1, 0], [0, 1]])
    first = _two_samples()[0]
    assert zico(net, [first, first]) == 0.0


def test_zico_needs_two_minibatches():
    net = linear_layers([[1, 0], [0, 1]])
    with pytest.raises(SpeedyNASError, match="at least 2 minibatches, got 1"):
        zico(net, _two_samples()[:1])
    with pytest.raises(SpeedyNASError, match="got 1"):
        create_estimator("zico").measure(net, [_two_samples()[0]])  # one image: one half


def test_zico_pools_the_halves_of_every_batch():
    torch.manual_seed(3)
    net = linear_layers(torch.randn(3, 4).tolist())
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g))
               for _ in range(2)]
    expected = zico(net, [*halves(batches[0]), *halves(batches[1])])
    assert [len(h[0]) for h in halves(batches[0])] == [3, 3]
    assert create_estimator("zico").measure(net, batches) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- NB201 cells

def _small_network(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return supernet.build_network(NB201.parse(arch), C=4, N=1).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)


def test_finite_on_real_nb201_cells():
    rng = np.random.default_rng(4)
    for arch in [str(NB201.sample(rng)) for _ in range(3)]:
        assert meco(_small_network(arch), _batch()) > 0
        assert math.isfinite(create_estimator("zico").measure(_small_network(arch), [_batch()]))


def test_disconnected_nb201_cell():
    """Every edge ``none``: every map after the stem is 0 (constant: contributes 0 to MeCo), and
    no weight's gradient varies (the logits are the classifier bias), so ZiCo is 0 -- the lowest
    value either gives (grad_norm is likewise 0 there; jacov is NaN)."""
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    net = _small_network(arch)
    assert meco(net, _batch()) == pytest.approx(meco(net.stem, _batch()), rel=1e-12)
    assert create_estimator("zico").measure(_small_network(arch), [_batch()]) == 0.0


def test_registered_and_measured_by_the_zero_cost_stage():
    """The search's zero-cost path (a fresh seeded toy NB201 network) stores what the proxies
    give on that network."""
    assert {"meco", "zico"} <= set(list_estimators())
    torch.manual_seed(0)
    host = supernet.create_supernet("nb201", C=4, N=1)
    arch = NB201.parse(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    batch = _batch()
    estimators = (create_estimator("meco"), create_estimator("zico"))
    setup = ZeroCostSetup(estimators, "init", 1, seed=3, network_size={"C": 4, "N": 1})
    trajectory, _ = finetune(host, arch, FinetuneBatches([batch], []),
                             FinetuneConfig(budgets=[1], batch_size=8),
                             needed_records(estimators), setup)
    fresh = setup.network(host, arch)
    direct = {"meco": meco(copy.deepcopy(fresh).train(), batch),
              "zico": zico(copy.deepcopy(fresh).train(), halves(batch))}
    assert all(math.isfinite(v) for v in direct.values())
    assert trajectory.zero_cost == pytest.approx(direct, rel=1e-6)
