"""Ground-truth sources: map an architecture to its true accuracy.

A source has ``lookup(arch) -> float | None`` (``None``: not known, the caller reports the
candidate as missing), ``lookup_many`` and ``describe()`` (one line for report headers). Sources
live in a registry so other modules can add theirs (``@register_ground_truth("retrain")``).

Built-in ``table``: a file loaded once and indexed by :func:`lookup_key`. Formats:

- benchmark JSON ``{"archs": {arch_text: {column: value, ...}}, ...}`` (``nb201.json``, the
  NB301 surrogate file);
- flat JSON ``{arch_text: {column: value, ...}}`` or ``{arch_text: value}`` (then the values are
  the metric and ``column`` is ignored);
- CSV with a header row: an ``arch`` column and metric columns (read with :mod:`csv`).

``column`` may be left out when the file has a single numeric column. Empty, ``null`` and
non-finite values mean "not known" (lookup gives ``None``). An arch listed twice must have the
same value both times. A byte-order mark is read past; the file is read within
:data:`speedynas_core.inputs.TABLE_LIMIT`. Any malformed file raises a one-line :class:`SpeedyNASError`
naming the file.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Callable

import search_spaces
from speedynas_core.errors import SpeedyNASError, shown
from speedynas_core.inputs import TABLE_LIMIT, read_input_text
from speedynas_core.plugins import Option
from speedynas_core.registry import Registry, create_checked

from .base import Arch, GroundTruth, SearchSpace

__all__ = [
    "GROUND_TRUTHS", "GroundTruth", "TableTruth", "create_ground_truth", "list_ground_truths",
    "lookup_key", "register_ground_truth",
]


def lookup_key(space: SearchSpace, arch: Arch | str) -> str:
    """The text a table is indexed by: the arch's canonical text, with DARTS pairs sorted.

    Arch values with a ``canonical()`` method (DARTS: each node's two pairs sorted) are keyed by
    its text, so pair order does not matter; others (NB201) by ``str(arch)``. The NB201
    isomorphism class is deliberately not used: isomorphic cells have their own table entries.
    """
    if isinstance(arch, str):
        arch = space.parse(arch)
    elif getattr(arch, "space_name", space.name) != space.name:
        raise SpeedyNASError(f"arch {arch} belongs to the {arch.space_name} space, not "
                             f"{space.name}")
    canonical = getattr(arch, "canonical", None)
    return str(canonical() if callable(canonical) else arch)


GROUND_TRUTHS: Registry[GroundTruth] = Registry("ground-truth source", fixed=("space",))
register_ground_truth: Callable = GROUND_TRUTHS.register


def create_ground_truth(name: str, **options: Any) -> GroundTruth:
    """The source registered as ``name`` with ``options``; bad names/options are named."""
    return create_checked(GROUND_TRUTHS, name, options)


def list_ground_truths() -> list[str]:
    """Registered ground-truth source names, sorted."""
    return GROUND_TRUTHS.names()


# --------------------------------------------------------------------------- table files

def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _known(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _same_value(a: float | None, b: float | None) -> bool:
    return a == b or (a is None and b is None)


def _pick_column(path: Path, column: str | None, available: list[str]) -> str:
    listing = ", ".join(available) or "none"
    if column is None:
        if len(available) == 1:
            return available[0]
        raise SpeedyNASError(f"ground-truth table {path}: choose a column; available: {listing}")
    if column not in available:
        raise SpeedyNASError(f"ground-truth table {path} has no numeric column {column!r}; "
                             f"available: {listing}")
    return column


def _conflict(path: Path, key: str, first: Any, second: Any, where: str = "") -> SpeedyNASError:
    return SpeedyNASError(f"ground-truth table {path}{where}: {shown(key, 200)} is listed twice "
                          f"with different values ({shown(first)} and {shown(second)}); keep one")


def _json_object(path: Path) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json`` object hook that refuses a key given twice with different values."""
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result and result[key] != value:
                raise _conflict(path, key, result[key], value)
            result[key] = value
        return result
    return build


def _read_json(path: Path, text: str, column: str | None) -> tuple[dict[str, float | None],
                                                                    str | None]:
    """Raw key -> value of a JSON table, and the column used (``None`` for flat values)."""
    try:
        data = json.loads(text, object_pairs_hook=_json_object(path))
    except SpeedyNASError:
        raise
    except RecursionError:
        raise SpeedyNASError(f"ground-truth table {path}: not valid JSON (nested too deeply)") \
            from None
    except ValueError as err:
        raise SpeedyNASError(f"ground-truth table {path}: not valid JSON ({_one_line(err)})") \
            from None
    archs = data.get("archs") if isinstance(data, dict) and "archs" in data else data
    if not isinstance(archs, dict) or not archs:
        raise SpeedyNASError(f"ground-truth table {path}: expected a JSON object mapping arch "
                             "text to a value or to {column: value} (optionally under 'archs')")
    if all(_is_number(v) or v is None for v in archs.values()):
        return {k: None if v is None else _known(float(v)) for k, v in archs.items()}, None
    if not all(isinstance(v, dict) for v in archs.values()):
        bad = next(k for k, v in archs.items() if not isinstance(v, dict))
        raise SpeedyNASError(f"ground-truth table {path}: entries mix numbers and objects "
                             f"(key {shown(bad)}); expected one form for every arch")
    available = sorted({c for v in archs.values() for c, x in v.items() if _is_number(x)})
    column = _pick_column(path, column, available)
    values: dict[str, float | None] = {}
    for key, entry in archs.items():
        value = entry.get(column)
        if value is not None and not _is_number(value):
            raise SpeedyNASError(f"ground-truth table {path}: column {shown(column)} of key "
                                 f"{shown(key)} is not a number: {shown(value)}")
        values[key] = None if value is None else _known(float(value))
    return values, column


def _read_csv(path: Path, text: str, column: str | None) -> tuple[dict[str, float | None], str]:
    """Raw key -> value of a CSV table with an ``arch`` column, and the column used."""
    rows = csv.reader(io.StringIO(text, newline=""))  # rows end at \n or \r\n only
    try:
        header = [h.strip() for h in next(rows, [])]
    except csv.Error as err:
        raise SpeedyNASError(f"ground-truth table {path}:1: {_one_line(err)}") from None
    if "arch" not in header:
        raise SpeedyNASError(f"ground-truth table {path}: the CSV header needs an 'arch' column; "
                             f"found: {', '.join(header) or 'no header'}")
    column = _pick_column(path, column, [h for h in header if h and h != "arch"])
    at, col = header.index("arch"), header.index(column)
    values: dict[str, float | None] = {}
    lines: dict[str, int] = {}
    try:
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise SpeedyNASError(f"ground-truth table {path}:{line}: {len(row)} fields, the "
                                     f"header has {len(header)}")
            cell = row[col].strip()
            try:
                value = _known(float(cell)) if cell else None
            except ValueError:
                raise SpeedyNASError(f"ground-truth table {path}:{line}: column {shown(column)} "
                                     f"is not a number: {shown(cell)}") from None
            arch = row[at]
            if arch in values and not _same_value(values[arch], value):
                raise _conflict(path, arch, values[arch], value,
                                f" (lines {lines[arch]} and {line})")
            values[arch] = value
            lines.setdefault(arch, line)
    except csv.Error as err:
        raise SpeedyNASError(f"ground-truth table {path}:{rows.line_num}: {_one_line(err)}") \
            from None
    if not values:
        raise SpeedyNASError(f"ground-truth table {path}: no rows")
    return values, column


@register_ground_truth("table")
class TableTruth(GroundTruth):
    """True accuracies from a JSON or CSV table file, loaded once, indexed by :func:`lookup_key`."""

    name = "table"

    def __init__(self, path: Annotated[str | Path, Option(type=str, help="JSON or CSV file")],
                 space: SearchSpace | str,
                 column: Annotated[str | None, Option(
                     help="metric column (null: the table's only numeric column)")
                 ] = "cifar10_test") -> None:
        self.path = Path(path)
        self.space = search_spaces.create(space) if isinstance(space, str) else space
        text = read_input_text(self.path, "ground-truth table", TABLE_LIMIT)
        reader = _read_csv if self.path.suffix.lower() == ".csv" else _read_json
        raw, self.column = reader(self.path, text, column)
        self._values = self._index(raw)

    def _index(self, raw: Mapping[str, float | None]) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        first: dict[str, str] = {}
        for text, value in raw.items():
            try:
                key = lookup_key(self.space, text)
            except SpeedyNASError as err:
                raise SpeedyNASError(f"ground-truth table {self.path}: key {shown(text)} is not "
                                     f"a {self.space.name} arch ({_one_line(err)})") from None
            if key in values and not _same_value(values[key], value):
                raise SpeedyNASError(f"ground-truth table {self.path}: keys {shown(first[key])} "
                                     f"and {shown(text)} are the same arch with different "
                                     f"values ({shown(values[key])} and {shown(value)})")
            values[key] = value
            first.setdefault(key, text)
        return values

    def __len__(self) -> int:
        return len(self._values)

    def lookup(self, arch: Arch | str) -> float | None:
        return self._values.get(lookup_key(self.space, arch))

    def describe(self) -> str:
        column = f" column {self.column}" if self.column else ""
        return f"table {self.path}{column} ({len(self)} {self.space.name} archs)"
