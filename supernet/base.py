"""The weight-sharing supernet interface and weight inheritance by sub-network extraction."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

import torch
from torch import nn

from speedynas_core.errors import SpeedyNASError
from search_spaces import Arch, SearchSpace


class Supernet(nn.Module, ABC):
    """A network holding every op on every edge; ``forward(x, arch)`` runs only ``arch``'s ops.

    Weight inheritance (:meth:`extract`) assembles a compact single-path network for an arch from
    *copies* of only the modules it uses (stem, chosen ops, reductions, head), so the supernet is
    never deep-copied and stays bit-identical however the sub-network is trained.
    """

    space: SearchSpace

    @abstractmethod
    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        """Logits of the single path ``arch`` selects."""

    @property
    @abstractmethod
    def num_search_cells(self) -> int:
        """Number of cell positions a per-cell path list must cover."""

    @abstractmethod
    def size(self) -> dict[str, Any]:
        """The keyword arguments that rebuild a supernet of this shape (num_classes included)."""

    @abstractmethod
    def assemble_subnet(self, arch: Any, take: Callable[[nn.Module], nn.Module]) -> nn.Module:
        """The single-path network of ``arch`` made of ``take(m)`` for each supernet module ``m``
        it uses (stem, chosen ops, reductions, head); its ``forward(x)`` computes what
        ``self(x, arch)`` computes."""

    def extract(self, arch: Any) -> nn.Module:
        """A sub-network for ``arch`` holding copies of only the tensors it uses."""
        return self.assemble_subnet(arch, clone_module).train(self.training)

    # The continuous relaxation (differentiable search): every edge computes the weighted sum
    # of all its ops, weights per cell type of shape (edges, ops), ops in ``relaxed_ops`` order.

    def relaxed_ops(self) -> dict[str, tuple[str, ...]]:
        """Cell type -> the op names of the mixing weights' columns (edges are rows)."""
        raise SpeedyNASError(f"the {self.space.name} supernet has no continuous relaxation")

    def relaxed_edges(self) -> dict[str, int]:
        """Cell type -> number of edges (rows of its mixing weights)."""
        raise SpeedyNASError(f"the {self.space.name} supernet has no continuous relaxation")

    def forward_relaxed(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                        ) -> torch.Tensor:
        """Logits of the relaxed supernet: on each edge the ``weights``-weighted sum of its ops
        (each op computed once; ``none`` contributes nothing and is not computed)."""
        raise SpeedyNASError(f"the {self.space.name} supernet has no continuous relaxation")

    def derive(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The discrete arch the mixing weights (or probabilities) select."""
        raise SpeedyNASError(f"the {self.space.name} supernet has no continuous relaxation")


def clone_module(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` made for speed: fresh tensors, shared plain attributes.

    Much cheaper than ``copy.deepcopy`` (which also copies hooks, tensor metadata...), and the
    copy shares no tensor storage with ``module``.
    """
    new = module.__class__.__new__(module.__class__)
    new.__dict__ = {  # hook dicts and buffer-name sets must not be shared with the original
        k: v.copy() if isinstance(v, (dict, set)) else v for k, v in module.__dict__.items()}
    new._parameters = {
        name: None if p is None else nn.Parameter(p.detach().clone(), p.requires_grad)
        for name, p in module._parameters.items()
    }
    new._buffers = {name: None if b is None else b.clone() for name, b in module._buffers.items()}
    new._modules = {name: None if m is None else clone_module(m)
                    for name, m in module._modules.items()}
    return new


def tensor_snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached clones of every parameter and buffer (for bit-identity checks)."""
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}
