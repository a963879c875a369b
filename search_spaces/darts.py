"""The DARTS search space: genotype values, their text form, sampling and mutation.

A genotype has a normal and a reduction cell. Each cell has two inputs (0 = output of cell k-2,
1 = output of cell k-1) and four intermediate nodes 0..3 (referred to as inputs 2..5 by later
nodes). Intermediate node ``k`` sums two edges, written as the (op, input) pairs ``2k`` and
``2k+1``; its two inputs are distinct and lie in ``0 .. k+1``. The cell output concatenates the
four intermediate nodes (``concat = [2, 3, 4, 5]``, the only value supported).

The text form is the usual one, e.g. ``Genotype(normal=[('sep_conv_3x3', 0), ...],
normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``. It is parsed by a small
tokenizer and a recursive-descent parser (never ``eval``); ``str(arch)`` gives it back exactly,
pair order included (pair order inside a node does not change the network, but it is kept so that
benchmark keys round-trip).
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from speedynas_core.errors import SpeedyNASError

from . import register_space
from .base import ArchParseError, SearchSpace
from .darts_genotypes import NAMED_GENOTYPES
from .graph_features import CellGraph, cell_features

#: Every op of the space, ``none`` first (``none`` never appears in a genotype).
OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
#: The 7 ops a genotype edge can hold (the supernet's per-edge candidates, in this order).
CANDIDATE_OPS: tuple[str, ...] = OPS[1:]
#: Intermediate nodes per cell.
NUM_NODES = 4
#: Edges per cell in the supernet: node k has an edge from each of its k + 2 predecessors.
NUM_EDGES = sum(k + 2 for k in range(NUM_NODES))  # 14
#: The only supported concat.
CONCAT: tuple[int, ...] = (2, 3, 4, 5)
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
FIELDS: tuple[str, ...] = ("normal", "normal_concat", "reduce", "reduce_concat")

Pair = tuple[str, int]
Cell = tuple[Pair, ...]

_VALID_OPS_TEXT = ", ".join(CANDIDATE_OPS)
_TEMPLATE = ("Genotype(normal=[('op', input), ... 8 pairs], normal_concat=[2, 3, 4, 5], "
             "reduce=[... 8 pairs], reduce_concat=[2, 3, 4, 5])")


def edge_index(node: int, inp: int) -> int:
    """Index (0..13) of the supernet edge feeding intermediate ``node`` from ``inp``."""
    return node * (node + 3) // 2 + inp


def _check_cell(cell_name: str, pairs: Sequence[Pair]) -> None:
    """Raise :class:`ArchParseError` unless ``pairs`` is a valid cell (ops, count, inputs)."""
    for pos, (op, _) in enumerate(pairs):
        if op == "none":
            raise ArchParseError(
                f"op 'none' in {cell_name} pair {pos}: genotypes never hold 'none'; "
                f"valid ops: {_VALID_OPS_TEXT}")
        if op not in CANDIDATE_OPS:
            raise ArchParseError(
                f"unknown op {op!r} in {cell_name} pair {pos}; valid ops: {_VALID_OPS_TEXT}")
    if len(pairs) != 2 * NUM_NODES:
        raise ArchParseError(
            f"{cell_name} has {len(pairs)} (op, input) pairs; expected {2 * NUM_NODES} "
            f"(2 per intermediate node 0..{NUM_NODES - 1})")
    for pos, (_, inp) in enumerate(pairs):
        node = pos // 2
        if not 0 <= inp <= node + 1:
            raise ArchParseError(
                f"input {inp} of {cell_name} pair {pos} is out of range: node {node} takes "
                f"inputs 0..{node + 1} (0, 1 = cell inputs, 2.. = earlier nodes)")
    for node in range(NUM_NODES):
        a, b = pairs[2 * node][1], pairs[2 * node + 1][1]
        if a == b:
            raise ArchParseError(
                f"node {node} of {cell_name} takes input {a} twice (pairs {2 * node} and "
                f"{2 * node + 1}); a node's two inputs must differ, choose among 0..{node + 1}")


def _check_concat(field: str, concat: Sequence[int]) -> None:
    if tuple(concat) != CONCAT:
        raise ArchParseError(
            f"{field} {list(concat)} is not supported; the only valid value is {list(CONCAT)}")


def _as_cell(pairs: Iterable[Sequence]) -> Cell:
    out = []
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or isinstance(pair[1], bool):
            raise ArchParseError(f"expected an (op, input) pair, got {pair!r}; "
                                 f"valid ops: {_VALID_OPS_TEXT}")
        try:
            out.append((pair[0], operator.index(pair[1])))
        except TypeError:
            raise ArchParseError(f"input {pair[1]!r} of pair {pair!r} is not an integer") from None
    return tuple(out)


@dataclass(frozen=True)
class DartsArch:
    """A DARTS genotype (immutable, hashable). ``str()`` is the standard genotype text."""

    normal: Cell
    reduce: Cell
    normal_concat: tuple[int, ...] = CONCAT
    reduce_concat: tuple[int, ...] = CONCAT

    space_name = "darts"

    def __post_init__(self) -> None:
        for name in CELL_TYPES:
            cell = _as_cell(getattr(self, name))
            _check_cell(name, cell)
            object.__setattr__(self, name, cell)
            concat = tuple(operator.index(i) for i in getattr(self, f"{name}_concat"))
            _check_concat(f"{name}_concat", concat)
            object.__setattr__(self, f"{name}_concat", concat)

    def cell(self, reduction: bool) -> Cell:
        """The reduction cell's pairs if ``reduction`` else the normal cell's."""
        return self.reduce if reduction else self.normal

    def canonical(self) -> DartsArch:
        """The same network with each node's two pairs sorted by (input, op)."""
        def sort(cell: Cell) -> Cell:
            return tuple(p for k in range(NUM_NODES) for p in sorted(cell[2 * k: 2 * k + 2],
                                                                     key=lambda p: (p[1], p[0])))
        return DartsArch(sort(self.normal), sort(self.reduce))

    def __str__(self) -> str:
        def pairs(cell: Cell) -> str:
            return "[" + ", ".join(f"('{op}', {inp})" for op, inp in cell) + "]"

        def ints(c: tuple[int, ...]) -> str:
            return "[" + ", ".join(str(i) for i in c) + "]"

        return (f"Genotype(normal={pairs(self.normal)}, normal_concat={ints(self.normal_concat)}, "
                f"reduce={pairs(self.reduce)}, reduce_concat={ints(self.reduce_concat)})")


# --------------------------------------------------------------------------------------------
# Parsing: tokenizer + recursive descent over a fixed grammar.

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<int>-?[0-9]+)
  | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<punct>[()\[\],=])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, int, str, punct, end, bad (a character no token starts with)
    text: str
    pos: int

    def describe(self) -> str:
        return "end of text" if self.kind == "end" else f"{self.text!r} at position {self.pos}"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # reported when the parser reaches it, so earlier errors come first
            tokens.append(_Token("bad", text[pos], pos))
            return tokens
        if m.lastgroup != "ws":
            tokens.append(_Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind == "bad":
            raise ArchParseError(f"unexpected character {tok.text!r} at position {tok.pos}; "
                                 f"expected {_TEMPLATE}")
        return tok

    def next(self) -> _Token:
        tok = self.tok
        self.i += 1
        return tok

    def expect(self, punct: str, where: str) -> None:
        tok = self.tok
        if tok.kind != "punct" or tok.text != punct:
            raise ArchParseError(f"expected {punct!r} {where} but found {tok.describe()}")
        self.i += 1

    def accept(self, punct: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == punct:
            self.i += 1
            return True
        return False

    def integer(self, where: str) -> int:
        tok = self.next()
        if tok.kind != "int":
            raise ArchParseError(f"expected an integer {where} but found {tok.describe()}")
        return int(tok.text)

    def genotype(self) -> DartsArch:
        tok = self.next()
        if tok.kind != "ident" or tok.text != "Genotype":
            raise ArchParseError(f"expected 'Genotype' but found {tok.describe()}; "
                                 f"expected {_TEMPLATE}")
        self.expect("(", "after 'Genotype'")
        fields: dict[str, object] = {}
        while not self.accept(")"):
            tok = self.next()
            if tok.kind != "ident" or tok.text not in FIELDS:
                raise ArchParseError(f"unknown field {tok.describe()}; valid fields: "
                                     f"{', '.join(FIELDS)}")
            if tok.text in fields:
                raise ArchParseError(f"field {tok.text!r} given twice (position {tok.pos})")
            self.expect("=", f"after {tok.text!r}")
            if tok.text in CELL_TYPES:
                fields[tok.text] = self.cell(tok.text)
            else:
                fields[tok.text] = self.concat(tok.text)
            if not self.accept(","):
                self.expect(")", f"after the value of {tok.text!r}")
                break
        if self.tok.kind != "end":
            rest = self.text[self.tok.pos:]
            raise ArchParseError(
                f"trailing text {rest[:40]!r} at position {self.tok.pos} after the closing ')' "
                f"of the genotype")
        for name in FIELDS:
            if name not in fields:
                raise ArchParseError(f"missing field {name!r}; a genotype has the fields "
                                     f"{', '.join(FIELDS)}")
        for name in CELL_TYPES:  # order: whole normal cell, then reduce; then concats
            _check_cell(name, fields[name])  # type: ignore[arg-type]
        for name in ("normal_concat", "reduce_concat"):
            _check_concat(name, fields[name])  # type: ignore[arg-type]
        return DartsArch(normal=fields["normal"], reduce=fields["reduce"],  # type: ignore[arg-type]
                         normal_concat=fields["normal_concat"],  # type: ignore[arg-type]
                         reduce_concat=fields["reduce_concat"])  # type: ignore[arg-type]

    def cell(self, name: str) -> Cell:
        self.expect("[", f"to open the {name} pairs")
        pairs: list[Pair] = []
        while not self.accept("]"):
            pos = len(pairs)
            self.expect("(", f"to open {name} pair {pos}")
            tok = self.next()
            if tok.kind != "str":
                raise ArchParseError(f"expected a quoted op name in {name} pair {pos} but found "
                                     f"{tok.describe()}; valid ops: {_VALID_OPS_TEXT}")
            op = tok.text[1:-1]
            if op == "none":
                raise ArchParseError(
                    f"op 'none' in {name} pair {pos}: genotypes never hold 'none'; "
                    f"valid ops: {_VALID_OPS_TEXT}")
            if op not in CANDIDATE_OPS:
                raise ArchParseError(f"unknown op {op!r} in {name} pair {pos}; "
                                     f"valid ops: {_VALID_OPS_TEXT}")
            self.expect(",", f"after the op of {name} pair {pos}")
            inp = self.integer(f"as the input of {name} pair {pos}")
            self.expect(")", f"to close {name} pair {pos}")
            pairs.append((op, inp))
            if not self.accept(","):
                self.expect("]", f"after {name} pair {pos}")
                break
        return tuple(pairs)

    def concat(self, name: str) -> tuple[int, ...]:
        tok = self.tok
        if tok.kind == "ident" and tok.text == "range":  # ``range(2, 6)`` as in some sources
            self.i += 1
            self.expect("(", "after 'range'")
            start = self.integer(f"in {name}")
            self.expect(",", f"in {name}")
            stop = self.integer(f"in {name}")
            self.expect(")", f"to close range() of {name}")
            return tuple(range(start, stop))
        self.expect("[", f"to open {name}")
        values: list[int] = []
        while not self.accept("]"):
            values.append(self.integer(f"in {name}"))
            if not self.accept(","):
                self.expect("]", f"to close {name}")
                break
        return tuple(values)


def parse_genotype(text: str) -> DartsArch:
    """The :class:`DartsArch` written as ``text``; raises :class:`ArchParseError` on bad text."""
    if not isinstance(text, str):
        raise ArchParseError(f"expected genotype text, got {type(text).__name__}")
    if not text.strip():
        raise ArchParseError(f"empty architecture text; expected {_TEMPLATE}")
    return _Parser(text.strip()).genotype()


# --------------------------------------------------------------------------------------------


@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS CIFAR search space (normal + reduction cell, 4 nodes, 7 ops per edge)."""

    name = "darts"
    ops = OPS
    candidate_ops = CANDIDATE_OPS

    def parse(self, text: str) -> DartsArch:
        """The genotype written as ``text`` (surrounding whitespace allowed)."""
        return parse_genotype(text)

    def encode(self, arch: DartsArch) -> np.ndarray:
        """Per cell type (normal, reduce), node, possible input and op, how many of the node's
        two pairs take that op from that input: 2 x 14 x 7 = 196 values, independent of the
        order a node's pairs are written in."""
        code = np.zeros((len(CELL_TYPES), NUM_EDGES, len(CANDIDATE_OPS)))
        for c, name in enumerate(CELL_TYPES):
            for position, (op, source) in enumerate(getattr(arch, name)):
                code[c, edge_index(position // 2, source), CANDIDATE_OPS.index(op)] += 1.0
        return code.ravel()

    def graph_features(self, arch: DartsArch | str) -> dict[str, float]:
        """68 features: per cell type (``normal_``, then ``reduce_``), the cell as a DAG from
        the cell inputs 0, 1 through nodes 2..5 to the concat nodes (definitions and sentinels in
        :mod:`search_spaces.graph_features`), in this order: the groups ``count_<op>``,
        ``min_path_<op>``, ``max_path_<op>``, ``paths_<op>``, each over :data:`CANDIDATE_OPS`;
        ``out_degree_0..4`` and ``dead_edges``. In-degrees (always 2), ``out_degree_5``
        (always 0) are left out; ``dead_edges`` is 0 while the concat holds every node."""
        arch = self._arch(arch)
        features: dict[str, float] = {}
        for name in CELL_TYPES:
            edges = tuple((source, 2 + pos // 2, op)
                          for pos, (op, source) in enumerate(getattr(arch, name)))
            graph = CellGraph(2 + NUM_NODES, edges, inputs=(0, 1),
                              outputs=getattr(arch, f"{name}_concat"))
            cell = cell_features(graph, CANDIDATE_OPS, in_nodes=(), out_nodes=range(1 + NUM_NODES))
            features |= {f"{name}_{key}": value for key, value in cell.items()}
        return features

    def sample(self, rng: np.random.Generator) -> DartsArch:
        """Uniform RandNAS draw: per node of each cell type two distinct inputs (written in
        ascending order) and, per edge, one of the 7 non-``none`` ops."""
        cells = []
        for _ in CELL_TYPES:
            pairs: list[Pair] = []
            for node in range(NUM_NODES):
                inputs = sorted(int(i) for i in rng.choice(node + 2, size=2, replace=False))
                ops = rng.integers(0, len(CANDIDATE_OPS), size=2)
                pairs += [(CANDIDATE_OPS[int(o)], i) for o, i in zip(ops, inputs)]
            cells.append(tuple(pairs))
        return DartsArch(normal=cells[0], reduce=cells[1])

    def fair_paths(self, rng: np.random.Generator) -> list[DartsArch]:
        """FairNAS paths of one step: 7 genotypes sharing each node's two inputs (drawn once,
        uniformly, as in :meth:`sample`); every pair slot of each cell type gets its own random
        permutation of the 7 ops, so each op appears on each slot in exactly one path."""
        cells: list[tuple[list[int], list[np.ndarray]]] = []
        for _ in CELL_TYPES:
            inputs: list[int] = []
            for node in range(NUM_NODES):
                inputs += sorted(int(i) for i in rng.choice(node + 2, size=2, replace=False))
            perms = [rng.permutation(len(CANDIDATE_OPS)) for _ in inputs]
            cells.append((inputs, perms))

        def cell(k: int, inputs: list[int], perms: list[np.ndarray]) -> Cell:
            return tuple((CANDIDATE_OPS[int(perm[k])], i) for i, perm in zip(inputs, perms))

        return [DartsArch(normal=cell(k, *cells[0]), reduce=cell(k, *cells[1]))
                for k in range(len(CANDIDATE_OPS))]

    def neighbours(self, arch: DartsArch | str) -> list[DartsArch]:
        """Every arch differing from ``arch`` in exactly one choice: one pair's op, or one pair's
        input (keeping the node's two inputs distinct), in one cell type. 120 of them."""
        arch = self._arch(arch)
        out = []
        for name in CELL_TYPES:
            cell = getattr(arch, name)
            for pos, (op, inp) in enumerate(cell):
                node, other = pos // 2, cell[pos ^ 1][1]
                variants = [(o, inp) for o in CANDIDATE_OPS if o != op]
                variants += [(op, i) for i in range(node + 2) if i not in (inp, other)]
                for pair in variants:
                    new = cell[:pos] + (pair,) + cell[pos + 1:]
                    out.append(DartsArch(**{**_fields(arch), name: new}))
        return out

    def mutate(self, arch: DartsArch | str, rng: np.random.Generator) -> DartsArch:
        """One of :meth:`neighbours` drawn uniformly: always valid and different from ``arch``."""
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def canonical_form(self, arch: DartsArch | str) -> str:
        """The genotype text with each node's two pairs sorted (the order does not matter)."""
        return str(self._arch(arch).canonical())

    def named_genotypes(self) -> list[str]:
        """Names accepted by :meth:`named`, sorted."""
        return sorted(NAMED_GENOTYPES)

    def named(self, name: str) -> DartsArch:
        """A published genotype by name (e.g. ``DARTS_V2``)."""
        try:
            text = NAMED_GENOTYPES[name]
        except KeyError:
            raise SpeedyNASError(f"unknown DARTS genotype name {name!r}; valid names: "
                                 f"{', '.join(self.named_genotypes())}") from None
        return self.parse(text)

    def _arch(self, arch: DartsArch | str) -> DartsArch:
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, DartsArch):
            raise SpeedyNASError(f"expected a DARTS genotype, got {type(arch).__name__} "
                                 f"{arch!s:.80}")
        return arch


def _fields(arch: DartsArch) -> dict[str, object]:
    return {"normal": arch.normal, "reduce": arch.reduce, "normal_concat": arch.normal_concat,
            "reduce_concat": arch.reduce_concat}
