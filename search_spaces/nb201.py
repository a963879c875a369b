"""The NAS-Bench-201 cell space: 6 edges, 5 ops, 15,625 cells.

Edge order (as in the canonical string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``):
1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2. Node 0 is the cell input, node 3 its output.

:meth:`NB201Space.enumerate` yields every cell in mixed-radix order of op indices with edge 1<-0
as the most significant digit (``index_of`` gives that position). This is *our* order; the
benchmark's own arch index is a different storage order and must come from its table.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from . import register_space
from .base import ArchParseError, SearchSpace
from .graph_features import CellGraph, cell_features
from .nb201_table import NB201Truth

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4


@dataclass(frozen=True)
class NB201Arch:
    """One NB201 cell: the op on each of the 6 edges, in :data:`EDGES` order."""

    ops: tuple[str, ...]
    space_name = "nb201"

    def op(self, node: int, source: int) -> str:
        """The op on edge ``node <- source``."""
        return self.ops[EDGES.index((node, source))]

    def __str__(self) -> str:
        parts, k = [], 0
        for node in range(1, NUM_NODES):
            parts.append("|" + "|".join(f"{self.ops[k + j]}~{j}" for j in range(node)) + "|")
            k += node
        return "+".join(parts)


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: parse, format, sample, mutate, enumerate, degeneracy and isomorphism."""

    name = "nb201"
    ops = OPS
    edges = EDGES

    def __len__(self) -> int:
        return len(OPS) ** len(EDGES)

    def parse(self, text: str) -> NB201Arch:
        """Parse the canonical string; errors name the bad token and the valid choices."""
        if not isinstance(text, str) or not text.strip():
            raise ArchParseError(f"empty NB201 arch string; expected the form {_FORM}")
        text = text.strip()
        groups = text.split("+")
        if len(groups) != NUM_NODES - 1:
            raise ArchParseError(
                f"NB201 arch {text!r} has {len(groups)} node groups separated by '+'; "
                f"expected 3, of the form {_FORM}")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            ops.extend(_parse_group(group, node, text))
        return NB201Arch(tuple(ops))

    def from_ops(self, ops: list[str] | tuple[str, ...]) -> NB201Arch:
        """An arch from its 6 edge ops (validated)."""
        ops = tuple(ops)
        if len(ops) != len(EDGES):
            raise ArchParseError(f"NB201 arch needs {len(EDGES)} edge ops, got {len(ops)}")
        for op in ops:
            _check_op(op, str(ops))
        return NB201Arch(ops)

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        """Each edge's op uniform over the 5 ops (so every cell has probability 1/15,625)."""
        return NB201Arch(tuple(OPS[i] for i in rng.integers(0, len(OPS), size=len(EDGES))))

    def fair_paths(self, rng: np.random.Generator) -> list[NB201Arch]:
        """5 paths; on every edge each of the 5 ops appears in exactly one of them."""
        perms = [rng.permutation(len(OPS)) for _ in EDGES]
        return [NB201Arch(tuple(OPS[perm[k]] for perm in perms)) for k in range(len(OPS))]

    def mutate(self, arch: NB201Arch, rng: np.random.Generator) -> NB201Arch:
        """Change the op of one uniformly chosen edge to one of the 4 other ops."""
        ops = list(arch.ops)
        edge = int(rng.integers(len(EDGES)))
        others = [op for op in OPS if op != ops[edge]]
        ops[edge] = others[int(rng.integers(len(others)))]
        return NB201Arch(tuple(ops))

    def neighbours(self, arch: NB201Arch) -> list[NB201Arch]:
        """The 24 cells with one edge's op changed (edge by edge, ops in :data:`OPS` order)."""
        return [NB201Arch(arch.ops[:edge] + (op,) + arch.ops[edge + 1:])
                for edge in range(len(EDGES)) for op in OPS if op != arch.ops[edge]]

    def encode(self, arch: NB201Arch) -> np.ndarray:
        """One-hot op per edge: 6 edges x 5 ops (:data:`EDGES`, :data:`OPS` order), 30 values."""
        code = np.zeros((len(EDGES), len(OPS)))
        code[np.arange(len(EDGES)), [OPS.index(op) for op in arch.ops]] = 1.0
        return code.ravel()

    def graph_features(self, arch: NB201Arch) -> dict[str, float]:
        """24 features of the cell as a DAG from node 0 to node 3 without its ``none`` edges
        (definitions and sentinels in :mod:`search_spaces.graph_features`), in this order:
        ``count_none``; the groups ``count_<op>``, ``min_path_<op>``, ``max_path_<op>``,
        ``paths_<op>``, each over the other four ops in :data:`OPS` order; ``in_degree_1..3``,
        ``out_degree_0..2`` and ``dead_edges``. Cells of one :meth:`canonical_form` share
        ``paths_<op>`` of the non-skip ops; the other features can differ between them."""
        edges = tuple((source, node, op) for (node, source), op in zip(EDGES, arch.ops)
                      if op != "none")
        graph = CellGraph(NUM_NODES, edges, inputs=(0,), outputs=(NUM_NODES - 1,))
        return {"count_none": float(arch.ops.count("none"))} | cell_features(
            graph, OPS[1:], in_nodes=range(1, NUM_NODES), out_nodes=range(NUM_NODES - 1))

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 cells, in mixed-radix order (edge 1<-0 most significant)."""
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            yield NB201Arch(ops)

    def ground_truth(self, column: str | None = None) -> NB201Truth:
        """The NAS-Bench-201 table shipped with the package, ``column`` of
        :data:`~search_spaces.nb201_table.COLUMNS` (default ``cifar10_test``)."""
        return NB201Truth(self) if column is None else NB201Truth(self, column=column)

    def index_of(self, arch: NB201Arch) -> int:
        """Position of ``arch`` in :meth:`enumerate` (not the benchmark's index)."""
        index = 0
        for op in arch.ops:
            index = index * len(OPS) + OPS.index(op)
        return index

    def is_degenerate(self, arch: NB201Arch) -> bool:
        """True when no path of non-``none`` ops joins the cell input to its output."""
        reach = [True] + [False] * (NUM_NODES - 1)
        for (node, source), op in zip(EDGES, arch.ops):
            if op != "none" and reach[source]:
                reach[node] = True
        return not reach[NUM_NODES - 1]

    def canonical_form(self, arch: NB201Arch) -> str:
        """A string shared by exactly the cells of one NB201 isomorphism class.

        Follows the benchmark's convention (its 6,466 classes): node 0 is ``0``; every other node
        is the ``+``-join of its incoming terms sorted as strings, where a term is ``#`` (zero)
        for a ``none`` edge or a source that is exactly ``#``, the source's own string for
        ``skip_connect``, and ``(source)@op`` otherwise. Sums are not flattened, so this is finer
        than functional equivalence (e.g. a skip into a node that also sums zeros).
        """
        nodes: list[str] = ["0"]
        for node in range(1, NUM_NODES):
            terms = []
            for (target, source), op in zip(EDGES, arch.ops):
                if target != node:
                    continue
                if op == "none" or nodes[source] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(nodes[source])
                else:
                    terms.append(f"({nodes[source]})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]


_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


def _check_op(op: str, text: str) -> None:
    if op not in OPS:
        raise ArchParseError(
            f"unknown NB201 op {op!r} in {text!r}; valid ops: {', '.join(OPS)}")


def _parse_group(group: str, node: int, text: str) -> list[str]:
    """The ops of node ``node``'s group ``|op~0|...|op~(node-1)|``."""
    if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
        raise ArchParseError(
            f"bad NB201 node group {group!r} in {text!r}; expected the form {_FORM}")
    tokens = group[1:-1].split("|")
    if len(tokens) != node:
        raise ArchParseError(
            f"NB201 node {node} group {group!r} has {len(tokens)} edges; expected {node} "
            f"(inputs 0..{node - 1})")
    ops = []
    for expected_source, token in enumerate(tokens):
        op, sep, source = token.partition("~")
        if not sep:
            raise ArchParseError(f"bad NB201 edge token {token!r} in {text!r}; expected op~input")
        _check_op(op, text)
        if source != str(expected_source):
            raise ArchParseError(
                f"bad input index {source!r} in NB201 edge {token!r}; node {node}'s edge "
                f"{expected_source + 1} must read input {expected_source}")
        ops.append(op)
    return ops
