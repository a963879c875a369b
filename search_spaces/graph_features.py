"""Graph features of a cell, after GRAF (Kadlecová et al., "Surprisingly strong performance
prediction with neural graph features", ICML 2024), shared by the search spaces.

A cell is a DAG (:class:`CellGraph`): its edges carry ops, ``none`` edges are left out, and an
*input-output path* is a path of one or more edges from an input node to an output node (a path
may run on through an output node to a later one; each end gives its own path). Lengths count
edges.

:func:`cell_features` gives, in this key order:

* ``count_<op>``: how many edges hold ``op``;
* ``min_path_<op>``, ``max_path_<op>``: the shortest and longest input-output path with at least
  one ``op`` edge; ``0`` when no such path exists (a real path has at least one edge);
* ``paths_<op>``: how many input-output paths have at least one ``op`` edge;
* ``in_degree_<n>``, ``out_degree_<n>``: edges into and out of node ``n``, for the nodes the
  space asks for;
* ``dead_edges``: edges on no input-output path (unreachable from an input or leading to no
  output).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: One edge: (source node, target node, op).
Edge = tuple[int, int, str]
#: One input-output path: the indices of its edges in :attr:`CellGraph.edges`, in path order.
Path = tuple[int, ...]


@dataclass(frozen=True)
class CellGraph:
    """A cell as a DAG on nodes ``0 .. num_nodes - 1``, with no ``none`` edges."""

    num_nodes: int
    edges: tuple[Edge, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def io_paths(graph: CellGraph) -> list[Path]:
    """Every input-output path of ``graph`` (depth first, edges in :attr:`CellGraph.edges`
    order)."""
    outgoing: list[list[int]] = [[] for _ in range(graph.num_nodes)]
    for index, (source, _, _) in enumerate(graph.edges):
        outgoing[source].append(index)
    found: list[Path] = []

    def extend(node: int, path: Path) -> None:
        if path and node in graph.outputs:
            found.append(path)
        for index in outgoing[node]:
            extend(graph.edges[index][1], path + (index,))

    for start in graph.inputs:
        extend(start, ())
    return found


def path_lengths(graph: CellGraph, paths: list[Path], op: str) -> list[int]:
    """The lengths of the ``paths`` with at least one ``op`` edge."""
    return [len(path) for path in paths if any(graph.edges[i][2] == op for i in path)]


def degrees(graph: CellGraph, in_nodes: Sequence[int],
            out_nodes: Sequence[int]) -> dict[str, float]:
    """``in_degree_<n>`` for each of ``in_nodes``, then ``out_degree_<n>`` for ``out_nodes``."""
    into = {f"in_degree_{n}": float(sum(t == n for _, t, _ in graph.edges)) for n in in_nodes}
    out = {f"out_degree_{n}": float(sum(s == n for s, _, _ in graph.edges)) for n in out_nodes}
    return into | out


def dead_edges(graph: CellGraph, paths: list[Path]) -> int:
    """How many edges lie on no input-output path."""
    return len(graph.edges) - len({index for path in paths for index in path})


def cell_features(graph: CellGraph, ops: Sequence[str], in_nodes: Sequence[int],
                  out_nodes: Sequence[int]) -> dict[str, float]:
    """The module's features of ``graph`` for ``ops``, in the documented key order."""
    paths = io_paths(graph)
    lengths = {op: path_lengths(graph, paths, op) for op in ops}
    features = {f"count_{op}": float(sum(e[2] == op for e in graph.edges)) for op in ops}
    features |= {f"min_path_{op}": float(min(ls, default=0)) for op, ls in lengths.items()}
    features |= {f"max_path_{op}": float(max(ls, default=0)) for op, ls in lengths.items()}
    features |= {f"paths_{op}": float(len(ls)) for op, ls in lengths.items()}
    features |= degrees(graph, in_nodes, out_nodes)
    features["dead_edges"] = float(dead_edges(graph, paths))
    return features
