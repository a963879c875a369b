"""Every cheap signal of a search's cells as feature blocks (speedynas_search.signals)."""
from __future__ import annotations

import math

import numpy as np

import search_spaces
from speedynas_core.atomic_io import append_jsonl
from speedynas_search.signals import BLOCKS, search_signals, signals_of

CELLS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
         "nor_conv_3x3~2|",
         "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]


def _record(arch: str, zero_cost: dict, flops: int | None) -> dict:
    return {"arch": arch, "params": 1000, "flops": flops, "trajectory": {"zero_cost": zero_cost}}


def test_blocks_of_records():
    space = search_spaces.create("nb201")
    records = [_record(CELLS[0], {"synflow": 5.0, "nwot": 2.0}, 10),
               _record(CELLS[1], {"synflow": None, "nwot": 1.0, "snip": 3.0}, None)]
    signals = signals_of(records, space)
    assert list(signals.blocks) == list(BLOCKS)
    names, values = signals.blocks["zero_cost"]
    assert names == ["nwot", "synflow"]          # snip: not measured on every cell
    assert values[0].tolist() == [2.0, 5.0] and math.isnan(values[1, 1])
    assert signals.column("size", "flops")[0] == 10 and math.isnan(signals.column("size",
                                                                                  "flops")[1])
    graph = space.graph_features(space.parse(CELLS[0]))
    np.testing.assert_array_equal(signals.blocks["graph"][1][0], list(graph.values()))
    assert signals.blocks["encoding"][1].shape == (2, 30)
    assert signals.matrix(["zero_cost", "size"]).shape == (2, 4)


def test_a_search_gives_each_arch_once(tmp_path):
    space = search_spaces.create("nb201")
    for value, arch in ((1.0, CELLS[0]), (2.0, CELLS[1]), (9.0, CELLS[0])):
        append_jsonl(tmp_path / "results.jsonl", _record(arch, {"nwot": value}, 10))
    signals = search_signals(tmp_path, space, blocks=("zero_cost",))
    assert signals.archs == CELLS and list(signals.blocks) == ["zero_cost"]
    assert signals.column("zero_cost", "nwot").tolist() == [1.0, 2.0]  # the first record wins
