"""The weight-sharing supernet interface and weight inheritance by sub-network extraction."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from search_spaces import Arch, SearchSpace


class Supernet(nn.Module, ABC):
    """A network holding every op on every edge; ``forward(x, arch)`` runs only ``arch``'s ops.

    Weight inheritance (:meth:`extract`) builds a compact single-path network for an arch holding
    *copies* of only the chosen ops' tensors (plus stem, reductions and head), so the supernet
    is never deep-copied and stays bit-identical however the sub-network is trained.
    """

    space: SearchSpace

    @abstractmethod
    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        """Logits of the single path ``arch`` selects."""

    @abstractmethod
    def size(self) -> dict[str, Any]:
        """The keyword arguments that rebuild a supernet of this shape (num_classes included)."""

    @abstractmethod
    def subnet_skeleton(self, arch: Any) -> nn.Module:
        """An uninitialised (meta-device) single-path network for ``arch`` with this supernet's
        sizes and BN policy; its ``forward(x)`` computes what ``self(x, arch)`` computes."""

    @abstractmethod
    def supernet_key(self, subnet_key: str, arch: Any) -> str:
        """The supernet state-dict key holding the tensor of ``subnet_key`` for ``arch``."""

    def extract(self, arch: Any) -> nn.Module:
        """A sub-network for ``arch`` initialised with copies of the supernet's tensors."""
        subnet = self.subnet_skeleton(arch)
        own = self.state_dict(keep_vars=True)
        state = {
            key: own[self.supernet_key(key, arch)].detach().clone()
            for key in subnet.state_dict(keep_vars=True)
        }
        subnet.load_state_dict(state, strict=True, assign=True)
        return subnet.train(self.training)


def tensor_snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached clones of every parameter and buffer (for bit-identity checks)."""
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}


def canonical_arch(space: SearchSpace, arch: Arch | str) -> Arch:
    """``arch`` as an Arch value of ``space`` (text is parsed)."""
    return space.parse(arch) if isinstance(arch, str) else arch
