"""Zero-cost estimators: a proxy measured on the candidate's network before any update.

The fine-tune stage (:func:`speedynas_search.finetune.finetune`) calls :meth:`ZeroCostEstimator.measure`
on a private copy of the candidate's network -- its inherited supernet weights, or a fresh
seeded initialisation of its stand-alone network (``zero_cost.weights``) -- on the
first ``zero_cost.batches`` fixed train batches, and stores the value in
``Trajectory.zero_cost[name]``; :meth:`ZeroCostEstimator.compute` returns it at every budget.
With several batches the score is the mean of the per-batch values (``synflow`` and
``l2_norm`` use no data and are computed once; ``zico`` pools the halves of every batch as its
minibatches). Definitions and papers: :mod:`estimators.proxies`.

==============  =============================================================
name            value (larger = better)
==============  =============================================================
``grad_norm``   sum of ||dL/dW||_2 (Abdelfattah et al. 2021)
``snip``        sum |W * dL/dW| (Lee et al. 2019)
``synflow``     sum W * dR/dW, |W|, all-ones input, no BN (Tanaka et al. 2020)
``jacov``       Jacobian covariance score (Mellor et al. 2020, v1)
``nwot``        log|det K_H| of ReLU codes (Mellor et al. 2021, NASWOT)
``l2_norm``     sum of ||W||_2, data-free (Abdelfattah et al. 2021)
``plain``       sum W * dL/dW (Mozer & Smolensky 1989)
``fisher``      summed Fisher channel saliency of conv/linear outputs (Turner et al. 2020)
``grasp``       sum -W * (H g) (Wang et al. 2020)
``epe_nas``     per-class Jacobian correlation score (Lopes et al. 2021)
``zen``         Zen-score of the Gaussian-initialised network (Lin et al. 2021)
``meco``        sum of min eigenvalues of channel correlations, one image (Jiang et al. 2023)
``zico``        sum of log inverse coefficients of variation of gradients (Li et al. 2023)
==============  =============================================================

Default weights: ``init``, on the stand-alone network at the benchmark's own size (search
config ``zero_cost``: NB201 C=16, N=5), as the five papers define and evaluate the proxies, so
only these values are comparable with the published ones; they also do not depend on how well
the supernet was trained. On a much smaller network the layers every arch shares (stem,
reductions, head) and the init noise dominate the gradient proxies. Measured at 32 px, two
sets of NB201 candidates (200 of seed 123, 100 of seed 7), Spearman with ``cifar10_test``,
C=16, N=5 | C=8, N=1: grad_norm 0.68, 0.65 | 0.22, 0.18; snip 0.68, 0.65 | 0.24, 0.19;
synflow 0.75, 0.73 | 0.74, 0.72; jacov 0.73, 0.70 | 0.76, 0.82; nwot 0.79, 0.78 | 0.78,
0.78 (params 0.72, 0.68); published over all 15,625 archs (Abdelfattah et al. 2021): about
0.58 for grad_norm and snip, 0.74 synflow, 0.73 jacov. Intervals and the commands:
``results/zero_cost_size/``. Agreement of all eleven with NAS-Bench-Suite-Zero's stored values:
``results/zero_cost_reference/``. ``inherited`` weights (the supernet's, its size) help the two
gradient proxies on a trained supernet and ruin jacov (``results/zero_cost_size/NOTES.md``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import nn

from . import proxies
from .registry import Batch, Estimator, register_estimator
from .trajectory import Candidate, Trajectory


class ZeroCostEstimator(Estimator):
    """A proxy of the untrained (or inherited) network, the same at every budget."""

    needs = frozenset({"zero_cost"})
    #: The per-batch proxy, ``proxy(net, batch) -> float`` (see :mod:`estimators.proxies`).
    proxy: Callable[[nn.Module, Batch], float]

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> float:
        """Mean of the proxy over ``batches`` (``net`` is a private copy; it may be modified)."""
        if not batches:
            raise ValueError(f"estimator {self.name!r} needs at least one batch")
        return math.fsum(self.proxy(net, batch) for batch in batches) / len(batches)

    def missing(self, trajectory: Trajectory, budget: int) -> list[str]:
        problems = super().missing(trajectory, budget)
        if not problems and self.name not in trajectory.zero_cost:
            problems.append(f"needs its zero-cost value, which was not measured (measured: "
                            f"{', '.join(sorted(trajectory.zero_cost))})")
        return problems

    def compute(self, trajectory: Trajectory, candidate: Candidate, budget: int) -> float:
        return trajectory.zero_cost[self.name]


@register_estimator("grad_norm")
class GradNorm(ZeroCostEstimator):
    """Sum of the weight tensors' loss-gradient L2 norms (Abdelfattah et al. 2021)."""

    proxy = staticmethod(proxies.grad_norm)


@register_estimator("snip")
class Snip(ZeroCostEstimator):
    """SNIP connection sensitivity summed over the network (Lee et al. 2019)."""

    proxy = staticmethod(proxies.snip)


@register_estimator("jacov")
class Jacov(ZeroCostEstimator):
    """Jacobian covariance of the batch's input Jacobians (Mellor et al. 2020, v1)."""

    proxy = staticmethod(proxies.jacov)


@register_estimator("nwot")
class NWOT(ZeroCostEstimator):
    """NASWOT: log|det| of the ReLU activation-pattern kernel (Mellor et al. 2021)."""

    proxy = staticmethod(proxies.nwot)


@register_estimator("synflow")
class Synflow(ZeroCostEstimator):
    """Synaptic flow of the network with |weights| on an all-ones image (Tanaka et al. 2020)."""

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> float:
        """Data-free: computed once, on one all-ones image shaped like the batches' images."""
        if not batches:
            raise ValueError(f"estimator {self.name!r} needs a batch for the image shape")
        return proxies.synflow(net, tuple(batches[0][0].shape[1:]))


@register_estimator("l2_norm")
class L2Norm(ZeroCostEstimator):
    """Sum of the weight tensors' L2 norms (Abdelfattah et al. 2021)."""

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> float:
        """Data-free: the weights' norms (the batches are not used)."""
        return proxies.l2_norm(net)


@register_estimator("plain")
class Plain(ZeroCostEstimator):
    """Signed first-order saliency sum W * dL/dW (Mozer & Smolensky 1989)."""

    proxy = staticmethod(proxies.plain)


@register_estimator("fisher")
class Fisher(ZeroCostEstimator):
    """Fisher channel saliency of every conv and linear output, summed (Turner et al. 2020)."""

    proxy = staticmethod(proxies.fisher)


@register_estimator("grasp")
class Grasp(ZeroCostEstimator):
    """GraSP: sum of -W * (Hessian-gradient product) (Wang et al. 2020)."""

    proxy = staticmethod(proxies.grasp)


@register_estimator("epe_nas")
class EpeNas(ZeroCostEstimator):
    """EPE-NAS: spread of the per-class input-Jacobian correlation scores (Lopes et al. 2021)."""

    proxy = staticmethod(proxies.epe_nas)


@register_estimator("zen")
class Zen(ZeroCostEstimator):
    """Zen-score: expressivity of the Gaussian-initialised network (Lin et al. 2021)."""

    proxy = staticmethod(proxies.zen)


@register_estimator("meco")
class MeCo(ZeroCostEstimator):
    """MeCo: minimum eigenvalues of the feature maps' channel correlations (Jiang et al. 2023)."""

    proxy = staticmethod(proxies.meco)


@register_estimator("zico")
class ZiCo(ZeroCostEstimator):
    """ZiCo: inverse coefficient of variation of the loss gradients (Li et al. 2023)."""

    def measure(self, net: nn.Module, batches: Sequence[Batch]) -> float:
        """The paper's statistics need gradients of several minibatches: every batch is split
        into two halves and all the halves are used (one batch of 64 gives two of 32), the
        common implementation choice (e.g. the ZiCo code published with MeCo)."""
        if not batches:
            raise ValueError(f"estimator {self.name!r} needs at least one batch")
        return proxies.zico(net, [half for batch in batches for half in proxies.halves(batch)])
