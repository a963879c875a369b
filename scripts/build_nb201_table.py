"""Build the package's compact NB201 tables from the shared benchmark files.

    python scripts/build_nb201_table.py [--table nb201|nb201_hw|nb201_robustness]
                                        [--source ../shared/benchmarks/nb201.json]
                                        [--out search_spaces/tables/nb201_cifar.npz]

``--table`` (default ``nb201``) picks the table: ``nb201`` (NAS-Bench-201 accuracies and
parameter counts, from ``nb201.json``), ``nb201_hw`` (HW-NAS-Bench, from ``nb201_hw.json``) or
``nb201_robustness`` (accuracy under adversarial attacks, from ``nb201_robustness.json``);
``--source`` and ``--out`` default to that table's shared file and shipped path.

Reads the source (all 15,625 cells, keyed by arch text), checks that it covers every cell of our
NB201 space exactly once, and writes the table's columns in ``space.enumerate()`` order as int32
fixed point (the fewest decimals that give back every value exactly). The file's ``meta``
records the source file's ``source`` text, its sha256 and this command, so the shipped table
names where its numbers come from. The same source always gives the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import search_spaces
from speedynas_core.atomic_io import atomic_writer
from speedynas_core.errors import SpeedyNASError
from search_spaces.nb201_extra_tables import (
    HW_COLUMNS,
    HW_DATASETS,
    HW_TABLE_PATH,
    ROBUSTNESS_COLUMNS,
    ROBUSTNESS_TABLE_PATH,
)
from search_spaces.nb201_table import (
    COLUMNS,
    FORMAT,
    MISSING_CODE,
    ROWS,
    TABLE_PATH,
    encode_column,
    write_table,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "benchmarks"
MAX_DECIMALS = 6
Entry = dict[str, Any]


def _nb201_description(fields: dict[str, str], column: str) -> str:
    """The source's own description of ``column`` (empty when it has none)."""
    return fields.get(column, "")


def _hw_entry(entry: Entry) -> Entry:
    """A HW-NAS-Bench entry ``{dataset: {metric: value}}`` as ``{metric_dataset: value}``."""
    return {f"{metric}_{dataset}": value for dataset in HW_DATASETS
            for metric, value in entry[dataset].items()}


def _hw_description(fields: dict[str, str], column: str) -> str:
    dataset = next(d for d in HW_DATASETS if column.endswith(f"_{d}"))
    return f"{fields[column[:-len(dataset) - 1]]}; {dataset} input size"


def _robustness_description(fields: dict[str, str], column: str) -> str:
    if "@Linf_eps-" not in column:
        return fields[column]
    attack, eps = column.split("@Linf_eps-")
    return f"{fields[f'{attack}@Linf_eps-E']} (E = {eps})"


class TableSpec(NamedTuple):
    """One shipped table: its shared source file, shipped path and columns, how an arch's
    source entry maps to ``{column: value}`` and where a column's description comes from."""

    source: str
    out: Path
    columns: tuple[str, ...]
    entry: Callable[[Entry], Entry]
    description: Callable[[dict[str, str], str], str]


TABLES: dict[str, TableSpec] = {
    "nb201": TableSpec("nb201.json", TABLE_PATH, COLUMNS, dict, _nb201_description),
    "nb201_hw": TableSpec("nb201_hw.json", HW_TABLE_PATH, HW_COLUMNS, _hw_entry,
                          _hw_description),
    "nb201_robustness": TableSpec("nb201_robustness.json", ROBUSTNESS_TABLE_PATH,
                                  ROBUSTNESS_COLUMNS, dict, _robustness_description),
}


def build_command(table: str) -> str:
    """Recorded in the file: the command that rebuilds ``table`` from the repository root."""
    option = "" if table == "nb201" else f" --table {table}"
    return (f"python scripts/build_nb201_table.py{option} "
            f"--source ../shared/benchmarks/{TABLES[table].source}")


def column_values(archs: dict[str, dict[str, Any]], column: str) -> np.ndarray:
    """``column`` of every cell in ``space.enumerate()`` order (NaN where the file has none)."""
    space = search_spaces.create("nb201")
    values = np.full(ROWS, np.nan)
    seen = np.zeros(ROWS, dtype=bool)
    for text, entry in archs.items():
        row = space.index_of(space.parse(text))
        if seen[row]:
            raise SpeedyNASError(f"{text!r} is a second key for row {row}")
        seen[row] = True
        value = entry.get(column)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpeedyNASError(f"{column} of {text!r} is not a number: {value!r}")
            values[row] = float(value)
    if not seen.all():
        raise SpeedyNASError(f"{int((~seen).sum())} NB201 cells are missing from the source")
    return values


def smallest_scale(values: np.ndarray) -> int:
    """The smallest power of ten that stores every value of ``values`` exactly."""
    for decimals in range(MAX_DECIMALS + 1):
        try:
            encode_column(values, 10 ** decimals)
        except SpeedyNASError:
            continue
        return 10 ** decimals
    raise SpeedyNASError(f"values need more than {MAX_DECIMALS} decimals")


def build(source: Path, out: Path, table: str = "nb201") -> dict[str, Any]:
    """Write ``table`` built from ``source`` to ``out``; returns its ``meta``."""
    spec = TABLES[table]
    raw = source.read_bytes()
    data = json.loads(raw)
    archs = {text: spec.entry(entry) for text, entry in data["archs"].items()}
    fields = data.get("fields", {})
    if len(archs) != ROWS:
        raise SpeedyNASError(f"{source} has {len(archs)} archs, expected {ROWS}")
    codes, columns = {}, {}
    for column in spec.columns:
        values = column_values(archs, column)
        scale = smallest_scale(values)
        codes[column] = encode_column(values, scale)
        columns[column] = {"scale": scale, "missing": int(np.isnan(values).sum()),
                           "description": spec.description(fields, column)}
    meta = {
        "format": FORMAT,
        "space": "nb201",
        "rows": ROWS,
        "row_order": "search_spaces.create('nb201').enumerate(); row = space.index_of(arch)",
        "encoding": f"int32 fixed point: value = code / scale; {MISSING_CODE} = missing",
        "columns": columns,
        "source_file": f"shared/benchmarks/{spec.source}",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "source": data.get("source", ""),
        "source_missing": data.get("missing", ""),
        "build_command": build_command(table),
    }
    with atomic_writer(out) as handle:
        write_table(handle, codes, meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=list(TABLES), default="nb201")
    parser.add_argument("--source", type=Path, help="default: the table's shared file")
    parser.add_argument("--out", type=Path, help="default: the table's shipped path")
    args = parser.parse_args(argv)
    spec = TABLES[args.table]
    args.source = args.source or SHARED / spec.source
    args.out = args.out or spec.out
    try:
        meta = build(args.source, args.out, args.table)
    except (SpeedyNASError, OSError, KeyError) as err:
        parser.exit(2, f"error: cannot build from {args.source}: {err}\n")
    scales = ", ".join(f"{c} x{i['scale']}" for c, i in meta["columns"].items())
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes; {meta['rows']} rows; {scales}; "
          f"source sha256 {meta['source_sha256']})")


if __name__ == "__main__":
    main()
