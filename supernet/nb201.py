"""NAS-Bench-201 networks: the stand-alone benchmark network and the weight-sharing supernet.

Macro skeleton: stem Conv3x3(3->C)+BN; N cells at C; residual reduction to 2C; N cells at 2C;
reduction to 4C; N cells at 4C; head BN-ReLU-global pool-Linear. ``cells`` holds all 3N+2
blocks in that order, so block ``k`` of a network and of the supernet share a state-dict prefix.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, Mapping, Sequence, Union

import torch
from torch import nn

import search_spaces
from speedynas_core.plugins import Option
from search_spaces.nb201 import EDGES, NUM_NODES, OPS, NB201Arch

from .base import Supernet
from .ops import BNPolicy, ReLUConvBN, Zero, avg_pool_3x3, make_bn
from .registry import register_network, register_supernet

Channels = Annotated[int, Option(min=1, help="channels of the first stage")]
CellsPerStage = Annotated[int, Option(min=1, help="cells per stage")]

CellArchs = Union[NB201Arch, Sequence[NB201Arch]]


def make_op(op: str, channels: int, bn: BNPolicy) -> nn.Module:
    """The NB201 op ``op`` at ``channels`` channels (stride 1)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, bn)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, bn)
    if op == "avg_pool_3x3":
        return avg_pool_3x3()
    raise ValueError(f"unknown NB201 op {op!r}; valid ops: {', '.join(OPS)}")


def cell_forward(x: torch.Tensor, ops: Sequence[str],
                 run_edge: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Node i = sum over j < i of edge(i<-j)(node j); ``none`` edges are skipped, not computed."""
    nodes = [x]
    for node in range(1, NUM_NODES):
        total = None
        for edge, ((target, source), op) in enumerate(zip(EDGES, ops)):
            if target != node or op == "none":
                continue
            out = run_edge(edge, nodes[source])
            total = out if total is None else total + out
        nodes.append(torch.zeros_like(x) if total is None else total)
    return nodes[-1]


class NB201Cell(nn.Module):
    """A single-path NB201 cell holding one op module per edge."""

    def __init__(self, arch: NB201Arch, edges: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = arch.ops
        self.edges = nn.ModuleList(edges)

    @classmethod
    def build(cls, arch: NB201Arch, channels: int, bn: BNPolicy) -> "NB201Cell":
        """A freshly initialised cell for ``arch``."""
        return cls(arch, [make_op(op, channels, bn) for op in arch.ops])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cell_forward(x, self.ops, lambda edge, h: self.edges[edge](h))


class NB201SuperCell(nn.Module):
    """A cell holding all 5 ops on each of its 6 edges (search BN policy)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, channels, "search") for op in OPS) for _ in EDGES)

    def chosen(self, arch: NB201Arch) -> list[nn.Module]:
        """The op module ``arch`` selects on each edge."""
        return [self.edges[edge][OPS.index(op)] for edge, op in enumerate(arch.ops)]

    def forward(self, x: torch.Tensor, arch: NB201Arch) -> torch.Tensor:
        modules = self.chosen(arch)
        return cell_forward(x, arch.ops, lambda edge, h: modules[edge](h))

    def forward_relaxed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Node i = sum over edges into i of sum over ops k of weights[edge, k] * op_k(source);
        ``weights`` is (6 edges, 5 ops in :data:`OPS` order); ``none`` is not computed."""
        nodes = [x]
        for node in range(1, NUM_NODES):
            total: Any = 0
            for edge, (target, source) in enumerate(EDGES):
                if target != node:
                    continue
                for k, module in enumerate(self.edges[edge]):
                    if not isinstance(module, Zero):
                        total = total + weights[edge, k] * module(nodes[source])
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """ReLU-Conv3x3 s2-BN-ReLU-Conv3x3-BN, plus a 2x2 avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, "standalone")
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, "standalone")
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


def build_blocks(make_cell: Callable[[int, int], nn.Module], C: int, N: int) -> list[nn.Module]:
    """3 stages of N cells (``make_cell(cell_index, channels)``) with reductions between."""
    blocks, index, channels = [], 0, C
    for stage in range(3):
        if stage > 0:
            blocks.append(ResidualReduction(channels, channels * 2))
            channels *= 2
        for _ in range(N):
            blocks.append(make_cell(index, channels))
            index += 1
    return blocks


class NB201Skeleton(nn.Module):
    """Stem, the blocks (cells and reductions, in order), and the head."""

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], lastact: nn.Module,
                 classifier: nn.Linear, C: int, N: int) -> None:
        super().__init__()
        self.C, self.N, self.num_classes = C, N, classifier.out_features
        self.stem = stem
        self.cells = nn.ModuleList(blocks)
        self.lastact = lastact
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    @property
    def num_search_cells(self) -> int:
        """Number of searchable cells (3N)."""
        return 3 * self.N

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """BN-ReLU, global average pool, linear classifier."""
        return self.classifier(torch.flatten(self.global_pooling(self.lastact(x)), 1))


def fresh_parts(make_cell: Callable[[int, int], nn.Module], num_classes: int, C: int, N: int,
                ) -> tuple[nn.Module, list[nn.Module], nn.Module, nn.Linear]:
    """Newly initialised stem, blocks, head activation and classifier."""
    stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), make_bn(C, "standalone"))
    lastact = nn.Sequential(make_bn(4 * C, "standalone"), nn.ReLU(inplace=True))
    return stem, build_blocks(make_cell, C, N), lastact, nn.Linear(4 * C, num_classes)


def per_cell(arch: CellArchs, num_cells: int) -> list[NB201Arch]:
    """``arch`` repeated for every cell, or a per-cell list checked for length."""
    if isinstance(arch, NB201Arch):
        return [arch] * num_cells
    archs = list(arch)
    if len(archs) != num_cells or not all(isinstance(a, NB201Arch) for a in archs):
        raise ValueError(f"expected one NB201Arch or a list of {num_cells} (one per cell), "
                         f"got {len(archs)} items")
    return archs


class NB201Network(NB201Skeleton):
    """A single-path NB201 network: every block runs on its own (see :meth:`build`)."""

    @classmethod
    def build(cls, arch: CellArchs, num_classes: int = 10, C: int = 16, N: int = 5,
              bn: BNPolicy = "standalone") -> "NB201Network":
        """A freshly initialised network of one cell (or one cell per position).

        ``bn="standalone"`` is the benchmark network; ``bn="search"`` matches a supernet's
        sub-network (search cells without affine BN or running statistics).
        """
        archs = per_cell(arch, 3 * N)
        make_cell = lambda index, channels: NB201Cell.build(archs[index], channels, bn)  # noqa: E731
        return cls(*fresh_parts(make_cell, num_classes, C, N), C=C, N=N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.cells:
            x = block(x)
        return self.head(x)


@register_network("nb201")
def build_nb201_network(arch: CellArchs, num_classes: int = 10, C: Channels = 16,
                        N: CellsPerStage = 5) -> NB201Network:
    """The benchmark's stand-alone network (C=16, N=5 by default)."""
    return NB201Network.build(arch, num_classes=num_classes, C=C, N=N)


@register_supernet("nb201")
class NB201Supernet(NB201Skeleton, Supernet):
    """Weight-sharing NB201 supernet; ``forward(x, arch)`` accepts one arch or one per cell."""

    def __init__(self, num_classes: int = 10, C: Channels = 16, N: CellsPerStage = 5) -> None:
        make_cell = lambda index, channels: NB201SuperCell(channels)  # noqa: E731
        super().__init__(*fresh_parts(make_cell, num_classes, C, N), C=C, N=N)
        self.space = search_spaces.create("nb201")

    def size(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "C": self.C, "N": self.N}

    def forward(self, x: torch.Tensor, arch: CellArchs) -> torch.Tensor:
        archs = iter(per_cell(arch, self.num_search_cells))
        x = self.stem(x)
        for block in self.cells:
            x = block(x) if isinstance(block, ResidualReduction) else block(x, next(archs))
        return self.head(x)

    def relaxed_ops(self) -> dict[str, tuple[str, ...]]:
        return {"cell": OPS}

    def relaxed_edges(self) -> dict[str, int]:
        return {"cell": len(EDGES)}

    def forward_relaxed(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                        ) -> torch.Tensor:
        x = self.stem(x)
        for block in self.cells:
            x = block(x) if isinstance(block, ResidualReduction) else block.forward_relaxed(
                x, weights["cell"])
        return self.head(x)

    def derive(self, weights: Mapping[str, torch.Tensor]) -> NB201Arch:
        """The strongest op on every edge, ``none`` included (as DARTS on NAS-Bench-201)."""
        return NB201Arch(tuple(OPS[int(k)] for k in weights["cell"].argmax(dim=1)))

    def assemble_subnet(self, arch: CellArchs,
                        take: Callable[[nn.Module], nn.Module]) -> NB201Network:
        archs = iter(per_cell(arch, self.num_search_cells))
        blocks = []
        for block in self.cells:
            if isinstance(block, ResidualReduction):
                blocks.append(take(block))
            else:
                cell_arch = next(archs)
                blocks.append(NB201Cell(cell_arch, [take(m) for m in block.chosen(cell_arch)]))
        return NB201Network(take(self.stem), blocks, take(self.lastact), take(self.classifier),
                            C=self.C, N=self.N)
