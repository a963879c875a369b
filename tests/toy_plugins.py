"""One plugin of each kind, written as a user would in a module of their own.

``tests/test_plugins.py`` copies this file into a temporary folder and runs ``train.py`` and
``search.py`` with ``plugins=[my_plugins]``: a search space with its supernet and stand-alone
network, a path sampler, an estimator with an option, and a ground-truth source.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated, Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

import search_spaces
from speedynas_core.plugins import Option
from estimators import register_estimator
from search_spaces import GroundTruth, register_ground_truth
from search_spaces import ArchParseError, SearchSpace, register_space
from supernet import Supernet, register_network, register_supernet
from supernet.measure import arch_parameters
from supernet.samplers import PathSampler, register_sampler

CHAIN_OPS = ("conv_3x3", "conv_1x1", "skip")
LENGTH = 3
Width = Annotated[int, Option(min=1, help="channels of every layer")]


# --------------------------------------------------------------------------- search space

@dataclass(frozen=True)
class ChainArch:
    """A chain of LENGTH layers, one op each: ``conv_3x3-skip-conv_1x1``."""

    ops: tuple[str, ...]
    space_name: ClassVar[str] = "chain"

    def __str__(self) -> str:
        return "-".join(self.ops)


@register_space("chain")
class ChainSpace(SearchSpace):
    """Every chain of LENGTH ops from CHAIN_OPS (27 archs)."""

    name = "chain"
    ops = CHAIN_OPS

    def parse(self, text: str) -> ChainArch:
        ops = tuple(text.strip().split("-"))
        bad = [op for op in ops if op not in CHAIN_OPS]
        if len(ops) != LENGTH or bad:
            raise ArchParseError(f"bad chain {text!r}: {LENGTH} ops joined by '-', each one of "
                                 f"{', '.join(CHAIN_OPS)}")
        return ChainArch(ops)

    def sample(self, rng: np.random.Generator) -> ChainArch:
        return ChainArch(tuple(CHAIN_OPS[i] for i in rng.integers(len(CHAIN_OPS), size=LENGTH)))

    def mutate(self, arch: ChainArch, rng: np.random.Generator) -> ChainArch:
        position = int(rng.integers(LENGTH))
        others = [op for op in CHAIN_OPS if op != arch.ops[position]]
        ops = list(arch.ops)
        ops[position] = others[int(rng.integers(len(others)))]
        return ChainArch(tuple(ops))

    def neighbours(self, arch: ChainArch) -> list[ChainArch]:
        return [ChainArch(arch.ops[:i] + (op,) + arch.ops[i + 1:])
                for i in range(LENGTH) for op in CHAIN_OPS if op != arch.ops[i]]

    def enumerate(self) -> Iterator[ChainArch]:
        return (ChainArch(ops) for ops in itertools.product(CHAIN_OPS, repeat=LENGTH))


# --------------------------------------------------------------------------- networks

def make_op(name: str, channels: int) -> nn.Module:
    """One layer: ReLU-Conv-BN (no affine, batch statistics, as in supernet cells) or identity."""
    if name == "skip":
        return nn.Identity()
    k = 3 if name == "conv_3x3" else 1
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(channels, affine=False, track_running_stats=False))


def make_stem(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(channels))


def make_head(channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


class ChainNet(nn.Module):
    """A chain's stand-alone network: stem, its layers, head."""

    def __init__(self, stem: nn.Module, layers: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem, self.layers, self.head = stem, nn.ModuleList(layers), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


@register_network("chain")
def build_chain_network(arch: ChainArch, num_classes: int = 10, C: Width = 8) -> ChainNet:
    """The stand-alone network of ``arch``."""
    return ChainNet(make_stem(C), [make_op(op, C) for op in arch.ops], make_head(C, num_classes))


@register_supernet("chain")
class ChainSupernet(Supernet):
    """Every op at every position; ``forward(x, arch)`` runs the chain ``arch`` selects."""

    def __init__(self, num_classes: int = 10, C: Width = 8) -> None:
        super().__init__()
        self.space = search_spaces.create("chain")
        self.num_classes, self.C = num_classes, C
        self.stem = make_stem(C)
        self.choices = nn.ModuleList(nn.ModuleDict({op: make_op(op, C) for op in CHAIN_OPS})
                                     for _ in range(LENGTH))
        self.head = make_head(C, num_classes)

    @property
    def num_search_cells(self) -> int:
        return 1

    def size(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "C": self.C}

    def assemble_subnet(self, arch: Any, take: Callable[[nn.Module], nn.Module]) -> nn.Module:
        arch = arch[0] if isinstance(arch, list) else arch
        return ChainNet(take(self.stem), [take(self.choices[i][op]) for i, op in
                                          enumerate(arch.ops)], take(self.head))

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        arch = arch[0] if isinstance(arch, list) else arch
        x = self.stem(x)
        for choice, op in zip(self.choices, arch.ops):
            x = choice[op](x)
        return self.head(x)


# --------------------------------------------------------------------------- sampler

@register_sampler("mutants")
class Mutants(PathSampler):
    """A uniform path and ``num_mutants`` one-op mutations of it in every step."""

    def __init__(self, net: Supernet, per_cell: bool = False,
                 num_mutants: Annotated[int, Option(min=0, help="mutations per step")] = 1,
                 ) -> None:
        super().__init__(net, per_cell)
        self.num_mutants = num_mutants

    def paths(self, rng: np.random.Generator) -> list:
        first = self.space.sample(rng)
        return [first] + [self.space.mutate(first, rng) for _ in range(self.num_mutants)]


# --------------------------------------------------------------------------- estimator

@register_estimator("last_loss", needs={"train_losses"})
def last_loss(trajectory, candidate, budget, *,
              scale: Annotated[float, Option(gt=0, help="multiplies the loss")] = 1.0) -> float:
    """Minus ``scale`` times the last training loss before B."""
    return -scale * trajectory.train_losses[budget - 1]


# --------------------------------------------------------------------------- ground truth

@register_ground_truth("size_truth")
class SizeTruth(GroundTruth):
    """A stand-in truth: the stand-alone network's parameter count at width ``C`` (millions)."""

    def __init__(self, space: SearchSpace,
                 C: Annotated[int, Option(min=1, help="width the count is taken at")] = 8) -> None:
        self.space, self.C = space, C

    def lookup(self, arch: Any) -> float:
        arch = self.space.parse(arch) if isinstance(arch, str) else arch
        return arch_parameters(arch, C=self.C) / 1e6

    def describe(self) -> str:
        return f"parameter count at C={self.C} (a test stand-in)"
