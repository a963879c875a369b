"""DARTS networks: the stand-alone CIFAR network of a genotype and the weight-sharing supernet.

Macro skeleton (both): stem Conv3x3(3 -> stem_multiplier*C) + BN (standalone policy), then
``layers`` cells; cells ``layers//3`` and ``2*layers//3`` are reduction cells (stride 2 on the
edges leaving the two cell inputs, channels doubled). A cell's inputs are the outputs of the
two previous cells, preprocessed by FactorizedReduce (when the previous cell reduced) or
ReLU-Conv1x1-BN; its output concatenates its 4 intermediate nodes. Head: global average pool
and Linear.

The supernet's cell ``i`` holds every op on each of its 14 edges
(``cells.<i>.edges.<edge>.<op index>``); the sub-network of an arch (:meth:`Supernet.extract`)
is a :class:`DartsNetwork` assembled from copies of the stem, each cell's preprocessing, the 8
chosen ops (``cells.<i>.ops.<p>`` for genotype pair ``p``) and the classifier.

An arch is one :class:`DartsArch` shared by all cells, or a sequence of ``layers`` of them (one
per cell position; cell ``i`` uses the normal or reduce part of its own arch).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Callable, Iterator, Mapping, NamedTuple, Sequence, Union

import torch
from torch import nn

import search_spaces
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option
from search_spaces.darts import CANDIDATE_OPS, NUM_NODES, DartsArch, edge_index, parse_genotype

from .base import Supernet
from .darts_ops import make_op, preprocess
from .ops import BNPolicy, ReLUConvBN, make_bn
from .registry import register_network, register_supernet

Channels = Annotated[int, Option(min=1, help="channels of the first cell")]
Cells = Annotated[int, Option(min=3, help="number of cells (reductions at 1/3 and 2/3)")]
StemMultiplier = Annotated[int, Option(min=1, help="stem channels = stem_multiplier x C")]

CellArchs = Union[DartsArch, str, Sequence[Union[DartsArch, str]]]
_OP_INDEX = {op: k for k, op in enumerate(CANDIDATE_OPS)}
#: The relaxation's ops (mixing-weight columns): ``none`` (weight only: it adds nothing) first,
#: then the candidate ops, as in the DARTS reference.
RELAXED_OPS = ("none", *CANDIDATE_OPS)
NUM_EDGES = edge_index(NUM_NODES - 1, NUM_NODES) + 1


@lru_cache(maxsize=256)
def _parse(text: str) -> DartsArch:
    return parse_genotype(text)


def per_cell(arch: CellArchs, layers: int) -> list[DartsArch]:
    """``arch`` repeated for every cell, or a per-cell list checked for length (text parsed)."""
    if isinstance(arch, (DartsArch, str)):
        arch = [arch] * layers
    elif not isinstance(arch, Sequence):
        raise SpeedyNASError(f"expected a DARTS genotype or a list of {layers} (one per cell), "
                             f"got {type(arch).__name__} {str(arch)[:80]}")
    archs = [_parse(a) if isinstance(a, str) else a for a in arch]
    bad = [type(a).__name__ for a in archs if not isinstance(a, DartsArch)]
    if bad or len(archs) != layers:
        raise SpeedyNASError(
            f"expected one DARTS genotype or a list of {layers} (one per cell), got "
            f"{len(archs)} items" + (f" including {bad[0]}" if bad else ""))
    return archs


class CellSpec(NamedTuple):
    """Sizes of one cell of the macro skeleton."""

    c_prev_prev: int
    c_prev: int
    channels: int
    reduction: bool
    reduction_prev: bool


def macro_layout(C: int, layers: int, stem_multiplier: int = 3) -> tuple[list[CellSpec], int, int]:
    """Per-cell sizes, the classifier's input channels and the auxiliary head's input channels."""
    c_stem = stem_multiplier * C
    c_pp, c_p, c_cur = c_stem, c_stem, C
    specs, reduction_prev, c_aux = [], False, c_stem
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c_cur *= 2
        specs.append(CellSpec(c_pp, c_p, c_cur, reduction, reduction_prev))
        reduction_prev = reduction
        c_pp, c_p = c_p, NUM_NODES * c_cur
        if i == 2 * layers // 3:
            c_aux = c_p
    return specs, c_p, c_aux


def cell_forward(s0: torch.Tensor, s1: torch.Tensor, pairs: Sequence[tuple[str, int]],
                 run: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Node k = run(2k, its first input) + run(2k+1, its second input); concat of the 4 nodes.
    ``s0``, ``s1`` are the already preprocessed cell inputs."""
    states = [s0, s1]
    for node in range(NUM_NODES):
        a, b = 2 * node, 2 * node + 1
        states.append(run(a, states[pairs[a][1]]) + run(b, states[pairs[b][1]]))
    return torch.cat(states[2:], dim=1)


class DartsCell(nn.Module):
    """A single-path DARTS cell: its preprocessing and one op module per genotype pair
    (``ops[p]`` is pair ``p``). See :meth:`build` for a freshly initialised cell."""

    def __init__(self, pairs: Sequence[tuple[str, int]], reduction: bool,
                 preprocess0: nn.Module, preprocess1: nn.Module,
                 ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.pairs = tuple(pairs)
        self.reduction = reduction
        self.preprocess0 = preprocess0
        self.preprocess1 = preprocess1
        self.ops = nn.ModuleList(ops)
        self.droppable = tuple(not isinstance(op, nn.Identity) for op in self.ops)

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, int]], spec: CellSpec, bn: BNPolicy) -> DartsCell:
        """A freshly initialised cell of ``pairs`` with the sizes of ``spec``."""
        return cls(pairs, spec.reduction,
                   preprocess(spec.c_prev_prev, spec.channels, spec.reduction_prev, bn),
                   ReLUConvBN(spec.c_prev, spec.channels, 1, 1, 0, bn),
                   [make_op(op, spec.channels, 2 if spec.reduction and inp < 2 else 1, bn)
                    for op, inp in pairs])

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        def run(p: int, h: torch.Tensor) -> torch.Tensor:
            h = self.ops[p](h)
            if drop_prob > 0 and self.droppable[p]:
                # timm's per-sample drop path (imported here: timm.layers takes ~3 s to import)
                from timm.layers import drop_path
                return drop_path(h, drop_prob, training=True)
            return h

        return cell_forward(self.preprocess0(s0), self.preprocess1(s1), self.pairs, run)


class AuxiliaryHeadCIFAR(nn.Module):
    """The DARTS CIFAR auxiliary classifier; expects an 8x8 input (32x32 images)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            make_bn(128, "standalone"),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            make_bn(768, "standalone"),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class NetworkParts(NamedTuple):
    """Ready-made modules a :class:`DartsNetwork` can be assembled from."""

    stem: nn.Module
    cells: Sequence[DartsCell]
    classifier: nn.Linear


class DartsNetwork(nn.Module):
    """The DARTS CIFAR network (NetworkCIFAR) of a genotype, or of one genotype per cell.

    ``bn`` is the policy of the cells' BN (the stem and auxiliary head always use standalone
    BN): ``"standalone"`` for training from scratch, ``"search"`` for the sub-network extracted
    from a :class:`DartsSupernet` of the same sizes. In training mode with ``auxiliary=True``
    ``forward`` returns ``(logits, aux_logits)``, else ``logits``. ``drop_path_prob`` (an
    attribute a training loop may change per epoch) drops non-identity ops in training mode.
    ``parts`` (stem, cells, classifier) replaces the freshly initialised modules; a supernet's
    :meth:`DartsSupernet.assemble_subnet` uses it.
    """

    def __init__(self, arch: CellArchs, num_classes: int = 10, C: int = 36, layers: int = 20,
                 auxiliary: bool = False, drop_path_prob: float = 0.0,
                 bn: BNPolicy = "standalone", stem_multiplier: int = 3, *,
                 parts: NetworkParts | None = None) -> None:
        super().__init__()
        self.archs = per_cell(arch, layers)
        self.num_classes, self.C, self.layers = num_classes, C, layers
        self.stem_multiplier = stem_multiplier
        self.auxiliary = auxiliary
        self.drop_path_prob = drop_path_prob
        self.aux_position = 2 * layers // 3
        specs, c_out, c_aux = macro_layout(C, layers, stem_multiplier)
        if parts is None:
            c_stem = stem_multiplier * C
            parts = NetworkParts(
                nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False),
                              make_bn(c_stem, "standalone")),
                [DartsCell.build(a.cell(spec.reduction), spec, bn)
                 for a, spec in zip(self.archs, specs)],
                nn.Linear(c_out, num_classes))
        elif len(parts.cells) != layers:
            raise ValueError(f"{len(parts.cells)} cells given for a {layers}-cell network")
        self.stem = parts.stem
        self.cells = nn.ModuleList(parts.cells)
        if auxiliary:
            self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = parts.classifier

    @property
    def num_search_cells(self) -> int:
        """Number of cells (``layers``)."""
        return self.layers

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        drop = self.drop_path_prob if self.training else 0.0
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop)
            if i == self.aux_position and self.auxiliary and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return (logits, aux) if aux is not None else logits


@register_network("darts")
def build_darts_network(arch: CellArchs, num_classes: int = 10, C: Channels = 36,
                        layers: Cells = 20, auxiliary: bool = False,
                        drop_path_prob: Annotated[float, Option(
                            min=0, lt=1, help="drop-path probability of non-identity ops")] = 0.0,
                        stem_multiplier: StemMultiplier = 3,
                        bn: BNPolicy = "standalone") -> DartsNetwork:
    """The stand-alone DARTS CIFAR network (C=36, 20 cells by default)."""
    return DartsNetwork(arch, num_classes=num_classes, C=C, layers=layers, auxiliary=auxiliary,
                        drop_path_prob=drop_path_prob, bn=bn, stem_multiplier=stem_multiplier)


class DartsSuperCell(nn.Module):
    """A cell holding all 14 edges (node k from each of its k+2 predecessors), each a
    ModuleList of the 7 candidate ops in :data:`CANDIDATE_OPS` order; search BN policy."""

    def __init__(self, spec: CellSpec) -> None:
        super().__init__()
        self.reduction = spec.reduction
        self.preprocess0 = preprocess(spec.c_prev_prev, spec.channels, spec.reduction_prev,
                                      "search")
        self.preprocess1 = ReLUConvBN(spec.c_prev, spec.channels, 1, 1, 0, "search")
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, spec.channels, 2 if spec.reduction and inp < 2 else 1,
                                  "search") for op in CANDIDATE_OPS)
            for node in range(NUM_NODES) for inp in range(node + 2))

    def chosen(self, pairs: Sequence[tuple[str, int]]) -> list[nn.Module]:
        """The op module each (op, input) pair selects, in pair order."""
        return [self.edges[edge_index(p // 2, inp)][_OP_INDEX[op]]
                for p, (op, inp) in enumerate(pairs)]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor,
                pairs: Sequence[tuple[str, int]]) -> torch.Tensor:
        chosen = self.chosen(pairs)
        return cell_forward(self.preprocess0(s0), self.preprocess1(s1), pairs,
                            lambda p, h: chosen[p](h))

    def forward_relaxed(self, s0: torch.Tensor, s1: torch.Tensor,
                        weights: torch.Tensor) -> torch.Tensor:
        """Node k = sum over its k+2 inputs of the mixed op on that edge; ``weights`` is
        (14 edges, 8 ops in :data:`RELAXED_OPS` order)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(NUM_NODES):
            total: Any = 0
            for inp in range(node + 2):
                edge = edge_index(node, inp)
                for k, module in enumerate(self.edges[edge], start=1):  # column 0: none
                    total = total + weights[edge, k] * module(states[inp])
            states.append(total)
        return torch.cat(states[2:], dim=1)


@register_supernet("darts")
class DartsSupernet(Supernet):
    """Weight-sharing DARTS supernet; ``forward(x, arch)`` runs only the 8 chosen ops of each
    cell (single path). Cells use search BN (no affine, no running stats), the stem standalone
    BN. ``arch`` is one genotype (all cells) or one per cell position."""

    def __init__(self, num_classes: int = 10, C: Channels = 16, layers: Cells = 8,
                 stem_multiplier: StemMultiplier = 3) -> None:
        super().__init__()
        self.space = search_spaces.create("darts")
        self.num_classes, self.C, self.layers = num_classes, C, layers
        self.stem_multiplier = stem_multiplier
        specs, c_out, _ = macro_layout(C, layers, stem_multiplier)
        c_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False),
                                  make_bn(c_stem, "standalone"))
        self.cells = nn.ModuleList(DartsSuperCell(spec) for spec in specs)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, num_classes)

    @property
    def num_search_cells(self) -> int:
        """Number of searchable cells (``layers``; normal and reduction cells alike)."""
        return self.layers

    def size(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "C": self.C, "layers": self.layers,
                "stem_multiplier": self.stem_multiplier}

    def cell_pairs(self, arch: CellArchs) -> Iterator[Sequence[tuple[str, int]]]:
        """The (op, input) pairs each cell runs for ``arch``, in cell order."""
        for a, cell in zip(per_cell(arch, self.layers), self.cells):
            yield a.cell(cell.reduction)

    def forward(self, x: torch.Tensor, arch: CellArchs) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell, pairs in zip(self.cells, self.cell_pairs(arch)):
            s0, s1 = s1, cell(s0, s1, pairs)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def relaxed_ops(self) -> dict[str, tuple[str, ...]]:
        return {"normal": RELAXED_OPS, "reduce": RELAXED_OPS}

    def relaxed_edges(self) -> dict[str, int]:
        return {"normal": NUM_EDGES, "reduce": NUM_EDGES}

    def forward_relaxed(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                        ) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell.forward_relaxed(
                s0, s1, weights["reduce" if cell.reduction else "normal"])
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def derive(self, weights: Mapping[str, torch.Tensor]) -> DartsArch:
        """Per node the two inputs whose strongest non-``none`` op weighs most, each with that
        op (the DARTS reference's genotype rule)."""
        cells = []
        for kind in ("normal", "reduce"):
            w = weights[kind][:, 1:].detach().cpu()
            pairs: list[tuple[str, int]] = []
            for node in range(NUM_NODES):
                rows = [edge_index(node, inp) for inp in range(node + 2)]
                strength = w[rows].max(dim=1).values
                inputs = sorted(strength.topk(2).indices.tolist())
                pairs += [(CANDIDATE_OPS[int(w[rows[i]].argmax())], i) for i in inputs]
            cells.append(tuple(pairs))
        return DartsArch(normal=cells[0], reduce=cells[1])

    def assemble_subnet(self, arch: CellArchs,
                        take: Callable[[nn.Module], nn.Module]) -> DartsNetwork:
        archs = per_cell(arch, self.layers)
        cells = []
        for cell, a in zip(self.cells, archs):
            pairs = a.cell(cell.reduction)
            cells.append(DartsCell(pairs, cell.reduction, take(cell.preprocess0),
                                   take(cell.preprocess1),
                                   [take(m) for m in cell.chosen(pairs)]))
        return DartsNetwork(archs, num_classes=self.num_classes, C=self.C, layers=self.layers,
                            bn="search", stem_multiplier=self.stem_multiplier,
                            parts=NetworkParts(take(self.stem), cells, take(self.classifier)))
