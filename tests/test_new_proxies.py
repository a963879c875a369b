"""The zero-cost proxies added for NAS-Bench-Suite-Zero (l2_norm, plain, fisher, grasp, epe_nas,
zen) against hand-computed values and properties on tiny networks, and their registration."""
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
from estimators.proxies import EPE_NAS_K, epe_nas, fisher, grasp, l2_norm, plain, snip, zen
from speedynas_search.finetune import FinetuneBatches, ZeroCostSetup, finetune
from speedynas_search.search_config import FinetuneConfig

from .conftest import linear_layers

NEW = ["l2_norm", "plain", "fisher", "grasp", "epe_nas", "zen"]
#: softmax probability of the wrong class for logits (1, 2) and label 0.
S = math.e / (1 + math.e)


def _identity_batch() -> tuple[nn.Sequential, tuple[torch.Tensor, torch.Tensor]]:
    """W = I, x = (1, 2), label 0: logits z = (1, 2), p = (1 - S, S), dL/dz = g = (-S, S)."""
    return linear_layers([[1, 0], [0, 1]]), (torch.tensor([[1.0, 2.0]]), torch.tensor([0]))


# --------------------------------------------------------------------------- l2_norm

def test_l2_norm_hand_computed():
    """||[[3, 4]]|| = 5, the conv's 2 x 1 x 1 x 1 weights of 2: sqrt(8); BN parameters and
    biases are not scored."""
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Flatten(),
                        nn.Linear(2, 1, bias=True))
    with torch.no_grad():
        net[0].weight.fill_(2.0)
        net[0].bias.fill_(100.0)
        net[3].weight.copy_(torch.tensor([[3.0, 4.0]]))
        net[3].bias.fill_(100.0)
    assert l2_norm(net) == pytest.approx(5.0 + math.sqrt(8.0))
    assert create_estimator("l2_norm").measure(net, []) == pytest.approx(5.0 + math.sqrt(8.0))


# --------------------------------------------------------------------------- plain

def test_plain_is_signed_where_snip_is_not():
    """dL/dW = g x^T: plain = g1 x1 + g2 x2 = -S + 2S = S, snip = S + 2S = 3S."""
    net, batch = _identity_batch()
    assert plain(net, batch) == pytest.approx(S, rel=1e-6)
    assert snip(copy.deepcopy(net), batch) == pytest.approx(3 * S, rel=1e-6)


def test_plain_of_a_bias_free_relu_chain_is_depth_times_g_dot_z():
    """Euler: the logits z are degree-1 homogeneous in each layer's weights, so each layer
    contributes sum W * dL/dW = g . z, g = dL/dz."""
    torch.manual_seed(0)
    net = linear_layers(*[torch.randn(*s).tolist() for s in [(5, 4), (3, 5), (4, 3)]],
                  between=nn.ReLU())
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    z = net(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(z, y), z)
    assert plain(net, (x, y)) == pytest.approx(3 * float((g * z.detach()).sum()), rel=1e-5)


# --------------------------------------------------------------------------- fisher

def test_fisher_of_a_linear_output():
    """a = z = (1, 2), dL/da = (-S, S): 0.5 * ((1 * -S)^2 + (2 * S)^2) = 2.5 S^2."""
    net, batch = _identity_batch()
    assert fisher(net, batch) == pytest.approx(2.5 * S**2, rel=1e-6)


def test_fisher_sums_over_positions_before_squaring():
    """A 1x1 conv with weight 1 on an image of two pixels (1, 2), flattened into the logits:
    one channel, a * dL/da = (-S, 2S) over the positions: 0.5 * (-S + 2S)^2 = 0.5 S^2."""
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    batch = (torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([0]))
    assert fisher(net, batch) == pytest.approx(0.5 * S**2, rel=1e-6)


# --------------------------------------------------------------------------- grasp

def test_grasp_hand_computed():
    """One layer z = W x: H = (diag(p) - p p^T) (x) x x^T, so H g = |x|^2 (P g) x^T with
    P = p1 p2 [[1, -1], [-1, 1]], P g = p1 p2 (-2S, 2S); -sum W * Hg = -|x|^2 (P g) . z
    = -5 * p1 p2 * 2S = -10 S^2 (1 - S)."""
    net, batch = _identity_batch()
    assert grasp(net, batch) == pytest.approx(-10 * S**2 * (1 - S), rel=1e-5)


def test_grasp_leaves_no_gradient_behind():
    net, batch = _identity_batch()
    grasp(net, batch)
    assert grasp(net, batch) == pytest.approx(-10 * S**2 * (1 - S), rel=1e-5)


# --------------------------------------------------------------------------- epe_nas

def test_epe_nas_hand_computed():
    """f(x) = sum ReLU(x): the Jacobians are the sign patterns. Class 0: (1, 0, 1), (1, 1, 0),
    correlation -1/2; class 1: (1, 0, 0), (0, 1, 1), correlation -1.
    e_0 = 2 log(1 + k) + 2 log(1/2 + k), e_1 = 4 log(1 + k); score = 2 |e_0 - e_1| / 2."""
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    expected = abs(2 * math.log(0.5 + EPE_NAS_K) - 2 * math.log(1 + EPE_NAS_K))
    assert epe_nas(nn.Sequential(nn.ReLU()), (x, labels)) == pytest.approx(expected, rel=1e-9)


def test_epe_nas_is_nan_when_a_correlation_is_undefined():
    x = torch.tensor([[-1.0, -1.0], [1.0, -1.0]])  # J1 = (0, 0): constant
    assert math.isnan(epe_nas(nn.Sequential(nn.ReLU()), (x, torch.zeros(2, dtype=torch.long))))


# --------------------------------------------------------------------------- zen

def _zen_batch(n: int, *shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, *shape), torch.zeros(n, dtype=torch.long)


def test_zen_does_not_depend_on_the_weights_it_is_given():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3))
    b = copy.deepcopy(a)
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(7.0).add_(1.0)
    batch = _zen_batch(8, 3, 8, 8)
    assert zen(a, batch) == zen(b, batch)
    assert zen(a, batch, seed=1) != zen(a, batch)


def test_zen_uses_the_features_before_global_pooling():
    """The head after the pooling layer changes nothing (inputs are drawn first, then the
    weights in module order, so the conv gets the same draws)."""
    body = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU())
    headed = nn.Sequential(copy.deepcopy(body), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(2, 3))
    batch = _zen_batch(4, 1, 6, 6)
    assert zen(headed, batch) == pytest.approx(zen(body, batch), rel=1e-6)


def test_zen_bn_correction_cancels_the_normalisation():
    """z = w . x with one output, then BN: the BN output differences are those of z divided by
    z's batch std sigma, and the score adds log(sigma) back, so it matches the network without
    BN up to the O(1/batch) effect of the batch mean. Without the correction they would differ
    by log(sigma) = log(|w|), about log(2) for w ~ N(0, I_4)."""
    batch = _zen_batch(4000, 4)
    with_bn = nn.Sequential(nn.Linear(4, 1, bias=False), nn.BatchNorm1d(1))
    without = nn.Sequential(nn.Linear(4, 1, bias=False))
    assert zen(with_bn, batch) == pytest.approx(zen(without, batch), abs=0.01)


# --------------------------------------------------------------------------- registration

def test_new_estimators_run_through_the_zero_cost_stage():
    """Each is registered, and the search's zero-cost path (a fresh seeded toy NB201 network)
    stores exactly what the proxy gives on that network."""
    assert set(NEW) <= set(list_estimators())
    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    arch = search_spaces.create("nb201").parse(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g))
    estimators = tuple(create_estimator(n) for n in NEW)
    setup = ZeroCostSetup(estimators, "init", 1, seed=3, network_size={"C": 4, "N": 1})
    trajectory, times = finetune(net, arch, FinetuneBatches([batch], []),
                                 FinetuneConfig(budgets=[1], batch_size=8),
                                 needed_records(estimators), setup)
    assert trajectory.train_losses == [] and set(times.zero_cost) == set(NEW)
    fresh = setup.network(net, arch)
    direct = {"l2_norm": l2_norm(fresh)}
    for name, proxy in [("plain", plain), ("fisher", fisher), ("grasp", grasp),
                        ("epe_nas", epe_nas), ("zen", zen)]:
        direct[name] = proxy(copy.deepcopy(fresh).train(), batch)
    assert all(np.isfinite(v) for v in direct.values())
    assert trajectory.zero_cost == pytest.approx(direct, rel=1e-6)
