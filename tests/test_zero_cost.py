"""Zero-cost proxies against hand-computed values on tiny networks, and their measurement stage."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces
import supernet
from estimators import Candidate, create_estimator, needed_records
from estimators.proxies import JACOV_K, grad_norm, jacov, nwot, scored_weights, snip, synflow
from speedynas_search.finetune import FinetuneBatches, ZeroCostSetup, finetune
from speedynas_search.search_config import FinetuneConfig
from supernet import tensor_snapshot

from .conftest import linear_layers

NB201 = search_spaces.create("nb201")
ZERO_COST = ["grad_norm", "snip", "synflow", "jacov", "nwot"]


# --------------------------------------------------------------------------- grad_norm, snip

def _two_layer() -> tuple[nn.Sequential, tuple[torch.Tensor, torch.Tensor]]:
    """W1 = I, ReLU, W2 = diag(2, 1); x = (1, 2), label 0: logits (2, 2), softmax (.5, .5),
    dL/dlogits g = (-.5, .5); h = (1, 2) > 0.
    dL/dW2 = g h^T = [[-.5, -1], [.5, 1]]      (norm sqrt(2.5), |W2 * .| = 1 + 1 = 2)
    dL/dW1 = (W2^T g) x^T = [[-1, -2], [.5, 1]] (norm 2.5,       |W1 * .| = 1 + 1 = 2)."""
    net = linear_layers([[1, 0], [0, 1]], [[2, 0], [0, 1]], between=nn.ReLU())
    return net, (torch.tensor([[1.0, 2.0]]), torch.tensor([0]))


def test_grad_norm_hand_computed():
    net, batch = _two_layer()
    assert grad_norm(net, batch) == pytest.approx(math.sqrt(2.5) + 2.5, rel=1e-6)


def test_snip_hand_computed():
    net, batch = _two_layer()
    assert snip(net, batch) == pytest.approx(4.0, rel=1e-6)


def test_single_layer_closed_form():
    """One layer W = I, x = (1, 2), label 0: dL/dW = g x^T with g = (-a, a), a = e/(1+e):
    grad_norm = a sqrt(10), snip = |W11 g1 x1| + |W22 g2 x2| = 3a."""
    net = linear_layers([[1, 0], [0, 1]])
    batch = (torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
    a = math.e / (1 + math.e)
    assert grad_norm(net, batch) == pytest.approx(a * math.sqrt(10), rel=1e-6)
    assert snip(net, batch) == pytest.approx(3 * a, rel=1e-6)


def test_gradients_are_recomputed_not_accumulated():
    net, batch = _two_layer()
    assert grad_norm(net, batch) == pytest.approx(grad_norm(net, batch))


def test_only_conv_and_linear_weights_are_scored():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4, 2))
    assert [tuple(w.shape) for w in scored_weights(net)] == [(4, 3, 3, 3), (2, 4)]


# --------------------------------------------------------------------------- synflow

def test_synflow_hand_computed():
    """|W1| = [[1, 2], [3, 0]], |W2| = [[1, 2]], input (1, 1): h = (3, 3), R = 9.
    dR/dW2 = h^T -> sum |W2| * . = 9; dR/dW1 = |W2|^T 1^T -> sum |W1| * . = 1 + 2 + 6 = 9.
    BN and ReLU in between change nothing (BN is bypassed, activations are positive)."""
    plain = linear_layers([[1, -2], [3, 0]], [[-1, 2]])
    assert synflow(plain, (2,)) == pytest.approx(18.0)
    with_bn = linear_layers([[1, -2], [3, 0]], [[-1, 2]],
                      between=nn.Sequential(nn.BatchNorm1d(2), nn.ReLU()))
    assert synflow(with_bn, (2,)) == pytest.approx(18.0)


def test_synflow_of_a_bias_free_chain_is_depth_times_output():
    """Euler: R is degree-1 homogeneous in each layer of a bias-free ReLU chain, so each layer
    contributes R and synflow = L * R, here with R = 1^T |W3| |W2| |W1| 1."""
    torch.manual_seed(0)
    w = [torch.randn(5, 4), torch.randn(3, 5), torch.randn(2, 3)]
    net = linear_layers(*[m.tolist() for m in w], between=nn.ReLU())
    r = (w[2].abs() @ w[1].abs() @ w[0].abs() @ torch.ones(4)).sum().item()
    assert synflow(net, (4,)) == pytest.approx(3 * r, rel=1e-6)


def test_synflow_estimator_uses_only_the_image_shape():
    net = linear_layers([[1, -2], [3, 0]], [[-1, 2]])
    est = create_estimator("synflow")
    data = [(torch.randn(7, 2), torch.zeros(7, dtype=torch.long))] * 3
    assert est.measure(net, data) == pytest.approx(18.0)


# --------------------------------------------------------------------------- jacov

def test_jacov_hand_computed():
    """f(x) = sum ReLU(x): the input Jacobians are the sign patterns J1 = (1, 0, 1),
    J2 = (1, 1, 0), correlation -1/2, eigenvalues 1/2 and 3/2."""
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    expected = -sum(math.log(v + JACOV_K) + 1 / (v + JACOV_K) for v in (0.5, 1.5))
    assert jacov(net, (x, torch.zeros(2, dtype=torch.long))) == pytest.approx(expected, rel=1e-9)


def test_jacov_of_a_linear_network():
    """f(x) = W x: every Jacobian is W^T 1, so the correlation matrix is all ones:
    eigenvalues N and 0 (N - 1 times)."""
    net = linear_layers([[1, -2, 0.5], [3, 0, 1]])
    x = torch.randn(4, 3)
    expected = -(math.log(4 + JACOV_K) + 1 / (4 + JACOV_K)
                 + 3 * (math.log(JACOV_K) + 1 / JACOV_K))
    assert jacov(net, (x, torch.zeros(4, dtype=torch.long))) == pytest.approx(expected, rel=1e-6)


class _IgnoresInput(nn.Module):
    """Like a network whose cells are all disconnected: the output does not depend on x."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.zeros_like(x))


def test_jacov_is_nan_when_undefined():
    labels = torch.zeros(2, dtype=torch.long)
    x = torch.tensor([[-1.0, -1.0], [1.0, -1.0]])  # J1 = (0, 0): no correlation defined
    assert math.isnan(jacov(nn.Sequential(nn.ReLU()), (x, labels)))
    assert math.isnan(jacov(_IgnoresInput(), (x, labels)))
    assert nwot(_IgnoresInput(), (x, labels)) == -math.inf  # no ReLU: K = 0


# --------------------------------------------------------------------------- nwot

NWOT_X = torch.tensor([[1.0, 2.0, -1.0, -3.0],    # codes (1, 1, 0, 0)
                       [0.5, -1.0, 2.0, -2.0],    #       (1, 0, 1, 0)
                       [1.0, 1.0, 1.0, 1.0]])     #       (1, 1, 1, 1)
NWOT_BATCH = (NWOT_X, torch.zeros(3, dtype=torch.long))


def test_nwot_hand_computed():
    """N_A = 4, every Hamming distance is 2: K = [[4,2,2],[2,4,2],[2,2,4]], det 32."""
    assert nwot(nn.Sequential(nn.ReLU()), NWOT_BATCH) == pytest.approx(math.log(32.0))


def test_nwot_sums_the_kernels_of_every_relu():
    """A second ReLU sees -ReLU(x) <= 0: all-zero codes, kernel 4 everywhere;
    det(2I + 2*11^T + 4*11^T) = det(2I + 6*11^T) = 2^2 * (2 + 18) = 80."""
    negate = linear_layers([[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, -1]])
    net = nn.Sequential(nn.ReLU(), negate, nn.ReLU(inplace=True))
    assert nwot(net, NWOT_BATCH) == pytest.approx(math.log(80.0))


def test_nwot_of_repeated_inputs_is_minus_infinity():
    x = torch.cat([NWOT_X[:1], NWOT_X[:1]])
    assert nwot(nn.Sequential(nn.ReLU()), (x, torch.zeros(2, dtype=torch.long))) == -math.inf


def test_measure_is_the_mean_over_batches():
    est = create_estimator("nwot")
    other = (torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, dtype=torch.long))
    # second batch: codes (1, 0), (0, 1): K = [[2, 0], [0, 2]], det 4
    assert est.measure(nn.Sequential(nn.ReLU()), [NWOT_BATCH, other]) == \
        pytest.approx((math.log(32.0) + math.log(4.0)) / 2)


# --------------------------------------------------------------------------- measurement stage

def _batches(steps: int) -> FinetuneBatches:
    g = torch.Generator().manual_seed(0)
    return FinetuneBatches([(torch.randn(8, 3, 16, 16, generator=g),
                             torch.randint(0, 10, (8,), generator=g)) for _ in range(steps)], [])


@pytest.fixture()
def net() -> supernet.Supernet:
    torch.manual_seed(0)
    return supernet.create_supernet("nb201", C=4, N=1)


def _setup(weights: str, batches: int = 1) -> ZeroCostSetup:
    return ZeroCostSetup(tuple(create_estimator(n) for n in ZERO_COST), weights, batches, seed=3)


@pytest.mark.parametrize("weights", ["inherited", "init"])
def test_zero_cost_only_fine_tune_makes_no_update(net, weights):
    arch = NB201.sample(np.random.default_rng(1))
    records = needed_records([create_estimator(n) for n in [*ZERO_COST, "params"]])
    before = tensor_snapshot(net)
    trajectory, times = finetune(net, arch, _batches(2), FinetuneConfig(budgets=[2], batch_size=8),
                                 records, _setup(weights))
    assert trajectory.train_losses == [] and trajectory.val_losses is None
    assert set(trajectory.zero_cost) == set(ZERO_COST) == set(times.zero_cost)
    assert all(s > 0 for s in times.zero_cost.values()) and times.train == 0.0
    assert all(math.isfinite(v) for v in trajectory.zero_cost.values())
    after = net.state_dict()
    assert all(after[k].equal(v) for k, v in before.items())
    for name in ZERO_COST:
        candidate = Candidate(str(arch), params=1, flops=1)
        assert create_estimator(name).score(trajectory, candidate, 2) == trajectory.zero_cost[name]


def test_inherited_values_are_those_of_the_extracted_sub_network(net):
    arch = NB201.sample(np.random.default_rng(2))
    batches = _batches(2)
    setup = _setup("inherited", batches=2)
    values, _ = setup.measure(setup.network(net, arch, net.extract(arch)), batches.train)
    expected = math.fsum(snip(net.extract(arch).train(), b) for b in batches.train) / 2
    assert values["snip"] == pytest.approx(expected, rel=1e-6)
    assert values["synflow"] == pytest.approx(synflow(net.extract(arch), (3, 16, 16)), rel=1e-9)


def test_init_weights_are_a_seeded_fresh_stand_alone_network(net, nb201_table):
    arch = NB201.sample(np.random.default_rng(2))
    setup = _setup("init")
    sub = net.extract(arch)
    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    first = setup.network(net, arch, sub)
    second = setup.network(net, arch, sub)
    assert torch.rand(1).equal(expected_draw)  # the global RNG is left alone
    torch.manual_seed(3)
    reference = supernet.build_network(arch)
    for a, b, c in zip(first.state_dict().values(), second.state_dict().values(),
                       reference.state_dict().values()):
        assert a.equal(b) and a.equal(c)
    # by default the benchmark's own network (C=16, N=5), whatever the supernet's size
    assert sum(p.numel() for p in first.parameters()) == nb201_table[str(arch)]["params_cifar10"]
    small = replace(setup, network_size={"C": 4, "N": 1}).network(net, arch, sub)
    assert [p.shape for p in small.parameters()] == [
        p.shape for p in supernet.build_network(arch, C=4, N=1).parameters()]
    batches = _batches(1).train
    assert setup.measure(first, batches)[0] == setup.measure(second, batches)[0]
