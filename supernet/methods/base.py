"""What every gradient-based search method shares: α, its optimizer, the mixing weights, and
the registry the methods are chosen from (``method: {name: darts_tse, tse_steps: 5}``).

Where a path sampler (:mod:`supernet.samplers`) picks the single paths a step trains, a
gradient-based method trains every op of every edge at once, mixed by architecture parameters α
(:class:`ArchParameters`), and learns α on the way
(:class:`supernet.methods.trainer.DifferentiableTrainer`). Two choices make a method:

- **relaxation**: ``softmax`` (the mixing weights are softmax(α) per edge) or ``dirichlet``
  (the weights are a pathwise-differentiable draw from Dirichlet(elu(α) + 1) per edge and
  step; the derived arch uses the Dirichlet mean). The only regulariser of α is the arch
  optimizer's weight decay (an L2 penalty).
- **objective** of the α step: the validation loss of one validation batch per training step
  (first-order DARTS, Ru et al. 2021 Alg. 2), or TSE (Alg. 3): the sum, over ``tse_steps``
  consecutive weight steps, of the gradient of each step's training loss with respect to α,
  taken at the weights and α of that step; α is updated with that sum after every
  ``tse_steps`` weight steps. The paper's pseudo-code writes the accumulated term as a gradient
  with respect to w; it is the α-gradient of the training loss (TSE sums training losses).
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from speedynas_core.plugins import Option
from speedynas_core.registry import Registry

from ..base import Supernet

Relaxation = Literal["softmax", "dirichlet"]

ArchLR = Annotated[float, Option(gt=0, help="Adam learning rate of the architecture parameters")]
ArchBeta1 = Annotated[float, Option(min=0, lt=1, help="Adam beta1 of the arch optimizer")]
ArchBeta2 = Annotated[float, Option(min=0, lt=1, help="Adam beta2 of the arch optimizer")]
ArchDecay = Annotated[float, Option(min=0, help="weight decay of the arch optimizer")]
InitScale = Annotated[float, Option(min=0, help="α starts as this x a standard normal draw")]
TSESteps = Annotated[int, Option(min=1, help="weight steps whose training-loss α-gradients "
                                             "are summed into one α update (K)")]


class ArchParameters(nn.Module):
    """α: one (edges, ops) parameter per cell type of a supernet's relaxation."""

    def __init__(self, net: Supernet, init_scale: float, generator: torch.Generator) -> None:
        super().__init__()
        ops, edges = net.relaxed_ops(), net.relaxed_edges()
        self.alphas = nn.ParameterDict({
            kind: nn.Parameter(init_scale * torch.randn(edges[kind], len(names),
                                                        generator=generator))
            for kind, names in ops.items()})


class GradientMethod:
    """How α mixes the ops (``relaxation``) and what the α step descends (``tse_steps``:
    ``None`` for the validation loss)."""

    relaxation: Relaxation = "softmax"
    tse_steps: int | None = None

    def __init__(self, net: Supernet, arch_lr: ArchLR = 3e-4, arch_beta1: ArchBeta1 = 0.5,
                 arch_beta2: ArchBeta2 = 0.999, arch_weight_decay: ArchDecay = 1e-3,
                 init_scale: InitScale = 1e-3) -> None:
        net.relaxed_ops()  # refuses a supernet without a relaxation
        self.arch_lr, self.betas = arch_lr, (arch_beta1, arch_beta2)
        self.arch_weight_decay, self.init_scale = arch_weight_decay, init_scale

    def arch_parameters(self, net: Supernet, seed: int) -> ArchParameters:
        """Freshly initialised α for ``net`` (seeded)."""
        return ArchParameters(net, self.init_scale, torch.Generator().manual_seed(seed))

    def arch_optimizer(self, alphas: ArchParameters) -> torch.optim.Adam:
        """Adam over α with the method's settings."""
        return torch.optim.Adam(alphas.parameters(), lr=self.arch_lr, betas=self.betas,
                                weight_decay=self.arch_weight_decay)

    def mixing_weights(self, alphas: ArchParameters) -> dict[str, torch.Tensor]:
        """The weights one forward pass mixes the ops with (differentiable in α; a fresh
        Dirichlet draw for each call under the dirichlet relaxation)."""
        if self.relaxation == "softmax":
            return {k: F.softmax(a, dim=-1) for k, a in alphas.alphas.items()}
        return {k: torch.distributions.Dirichlet(F.elu(a) + 1).rsample()
                for k, a in alphas.alphas.items()}

    def probabilities(self, alphas: ArchParameters) -> dict[str, torch.Tensor]:
        """The expected mixing weights (softmax, or the Dirichlet mean), detached: what the
        derived arch and the heat maps show."""
        with torch.no_grad():
            if self.relaxation == "softmax":
                return self.mixing_weights(alphas)
            concentration = {k: F.elu(a) + 1 for k, a in alphas.alphas.items()}
            return {k: c / c.sum(dim=-1, keepdim=True) for k, c in concentration.items()}


class TSEObjective(GradientMethod):
    """α descends the summed training-loss α-gradients of ``tse_steps`` weight steps."""

    def __init__(self, net: Supernet, tse_steps: TSESteps = 100, arch_lr: ArchLR = 3e-4,
                 arch_beta1: ArchBeta1 = 0.5, arch_beta2: ArchBeta2 = 0.999,
                 arch_weight_decay: ArchDecay = 1e-3, init_scale: InitScale = 1e-3) -> None:
        super().__init__(net, arch_lr, arch_beta1, arch_beta2, arch_weight_decay, init_scale)
        self.tse_steps = tse_steps


#: Gradient-based search methods, chosen with ``method.name``; the options are their keyword
#: parameters (``net`` is supplied by the trainer).
METHODS: Registry[GradientMethod] = Registry("gradient-based method", fixed=("net",))
register_method: Callable = METHODS.register


def create_method(name: str, net: Supernet, **options: Any) -> GradientMethod:
    """The method registered as ``name`` for ``net``."""
    return METHODS.create(name, net, **options)


def weights_of(probabilities: Mapping[str, torch.Tensor]) -> dict[str, list[list[float]]]:
    """Plain nested lists of per-cell-type probabilities (for ``history.json``)."""
    return {k: [[round(float(v), 6) for v in row] for row in p.tolist()]
            for k, p in probabilities.items()}
