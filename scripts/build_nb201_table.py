"""Build the package's compact NAS-Bench-201 table from the shared benchmark file.

    python scripts/build_nb201_table.py [--source ../shared/benchmarks/nb201.json]
                                        [--out search_spaces/tables/nb201_cifar.npz]

Reads the shared ``nb201.json`` (all 15,625 cells, keyed by arch text), checks that it covers
every cell of our NB201 space exactly once, and writes the columns of
:data:`search_spaces.nb201_table.COLUMNS` in ``space.enumerate()`` order as int32 fixed point
(the fewest decimals that give back every value exactly). The file's ``meta`` records the
source file's ``source`` text, its sha256 and this command, so the shipped table names where
its numbers come from. The same source always gives the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from speedynas_core.atomic_io import atomic_writer
from speedynas_core.errors import SpeedyNASError
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
DEFAULT_SOURCE = REPO.parent / "shared" / "benchmarks" / "nb201.json"
#: Recorded in the file: the command that rebuilds it from the repository root.
BUILD_COMMAND = "python scripts/build_nb201_table.py --source ../shared/benchmarks/nb201.json"
MAX_DECIMALS = 6


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


def build(source: Path, out: Path) -> dict[str, Any]:
    """Write the table built from ``source`` to ``out``; returns its ``meta``."""
    raw = source.read_bytes()
    data = json.loads(raw)
    archs, fields = data["archs"], data.get("fields", {})
    if len(archs) != ROWS:
        raise SpeedyNASError(f"{source} has {len(archs)} archs, expected {ROWS}")
    codes, columns = {}, {}
    for column in COLUMNS:
        values = column_values(archs, column)
        scale = smallest_scale(values)
        codes[column] = encode_column(values, scale)
        columns[column] = {"scale": scale, "missing": int(np.isnan(values).sum()),
                           "description": fields.get(column, "")}
    meta = {
        "format": FORMAT,
        "space": "nb201",
        "rows": ROWS,
        "row_order": "search_spaces.create('nb201').enumerate(); row = space.index_of(arch)",
        "encoding": f"int32 fixed point: value = code / scale; {MISSING_CODE} = missing",
        "columns": columns,
        "source_file": "shared/benchmarks/nb201.json",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "source": data.get("source", ""),
        "source_missing": data.get("missing", ""),
        "build_command": BUILD_COMMAND,
    }
    with atomic_writer(out) as handle:
        write_table(handle, codes, meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=TABLE_PATH)
    args = parser.parse_args(argv)
    try:
        meta = build(args.source, args.out)
    except (SpeedyNASError, OSError, KeyError) as err:
        parser.exit(2, f"error: cannot build from {args.source}: {err}\n")
    scales = ", ".join(f"{c} x{i['scale']}" for c, i in meta["columns"].items())
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes; {meta['rows']} rows; {scales}; "
          f"source sha256 {meta['source_sha256']})")


if __name__ == "__main__":
    main()
