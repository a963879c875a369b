"""The NAS-Bench-201 table shipped with the package, and the ground-truth source ``nb201``.

``tables/nb201_cifar.npz`` holds six columns for all 15,625 NB201 cells, one row per cell in
``search_spaces.create("nb201").enumerate()`` order (row = ``space.index_of(arch)``, so no arch
text is stored): :data:`COLUMNS`. Each column is an int32 array of fixed-point values (the
value times the column's ``scale``; the accuracies have at most 4 decimals, so ``int / scale``
gives back exactly the float the benchmark file holds) with :data:`MISSING_CODE` for "not
known". A ``meta`` entry (JSON text) records the format, the scales, the field descriptions and
the provenance: the source file's ``source`` text and sha256, and the command that built the
table (``scripts/build_nb201_table.py``, the only code that reads ``../shared``).
:class:`ShippedTableTruth` serves one column of any table in this format as a ground truth
(``nb201`` here; HW-NAS-Bench and robustness tables in :mod:`search_spaces.nb201_extra_tables`).

>>> import search_spaces
>>> from speedynas_search import create_ground_truth
>>> truth = create_ground_truth("nb201", space=search_spaces.create("nb201"))
>>> truth.lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
...              "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
93.66
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, ClassVar, Literal, get_args

import numpy as np

import search_spaces
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option

from .base import Arch, GroundTruth, SearchSpace
from .ground_truth import register_ground_truth

__all__ = [
    "COLUMNS", "Column", "FORMAT", "MISSING_CODE", "NB201Table", "NB201Truth", "ShippedTableTruth",
    "TABLES_DIR", "TABLE_PATH", "decode_column", "encode_column", "load_table", "read_table",
    "write_table",
]

#: Where the shipped tables live inside the package.
TABLES_DIR = Path(__file__).resolve().parent / "tables"
#: The NAS-Bench-201 table.
TABLE_PATH = TABLES_DIR / "nb201_cifar.npz"
#: A shipped column's name (the config's choices for ``ground_truth.column``).
Column = Literal["cifar10_test", "cifar10_valid_val", "cifar100_test", "imagenet16_120_test",
                 "cifar10_test_12ep_1seed", "params_cifar10"]
#: The shipped columns, in file order; the first is the default ground truth.
COLUMNS: tuple[str, ...] = get_args(Column)
#: Stored in place of a value the benchmark does not have.
MISSING_CODE = int(np.iinfo(np.int32).min)
#: Format tag written into ``meta``; a file with another tag is refused.
FORMAT = "speedynas-nb201-table/1"
ROWS = 15625
#: Zip entries get this fixed time stamp, so the same table always gives the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class NB201Table:
    """Decoded columns (float64, NaN = missing, row = ``space.index_of(arch)``), ``meta`` and
    the table's name (its file's stem)."""

    columns: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]
    name: str = "NB201"

    def column(self, name: str) -> np.ndarray:
        """One column (read-only); an unknown name is a one-line error listing the valid ones."""
        if name not in self.columns:
            raise SpeedyNASError(f"the {self.name} table has no column {name!r}; available: "
                                 f"{', '.join(self.columns)}")
        return self.columns[name]


def encode_column(values: np.ndarray, scale: int) -> np.ndarray:
    """``values`` (float, NaN = missing) as int32 fixed point; refuses values that would not
    decode to exactly the same float."""
    values = np.asarray(values, dtype=np.float64)
    known = np.isfinite(values)
    codes = np.full(values.shape, MISSING_CODE, dtype=np.int32)
    scaled = np.round(values[known] * scale)
    if scaled.size and (np.abs(scaled).max() >= 2 ** 31 - 1):
        raise SpeedyNASError(f"values exceed int32 range at scale {scale}")
    codes[known] = scaled.astype(np.int32)
    if not np.array_equal(decode_column(codes, scale)[known], values[known]):
        raise SpeedyNASError(f"values need more than {len(str(scale)) - 1} decimals "
                             f"(scale {scale}); they would not round-trip")
    return codes


def decode_column(codes: np.ndarray, scale: int) -> np.ndarray:
    """Float64 values of an int32 fixed-point column (``MISSING_CODE`` -> NaN).

    ``int / scale`` is one correctly rounded division, so it gives the float nearest the
    decimal value, i.e. the same float a JSON parser reads from the benchmark file."""
    values = codes.astype(np.float64) / np.float64(scale)
    values[codes == MISSING_CODE] = np.nan
    return values


def write_table(handle: IO[bytes], codes: Mapping[str, np.ndarray],
                meta: Mapping[str, Any]) -> None:
    """Write an ``.npz`` of the int32 ``codes`` and the ``meta`` JSON text, byte-reproducibly
    (fixed entry order and time stamps), readable with ``np.load(allow_pickle=False)``."""
    entries = {"meta": np.array(json.dumps(meta, indent=1, ensure_ascii=False))}
    entries.update(codes)
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in entries.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


@contextlib.contextmanager
def opened_table(path: Path, form: str, what: str, builder: str
                 ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The shipped ``.npz`` at ``path`` (read with ``allow_pickle=False``) and its ``meta``,
    which must be of format ``form``; a missing or unreadable file, or a missing entry read in
    the ``with`` body, is a one-line error naming ``what`` and ``path`` (and ``builder``, the
    script that rebuilds it)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].item())
            if meta.get("format") != form:
                raise SpeedyNASError(f"{what} {path}: format {meta.get('format')!r}, "
                                     f"expected {form!r}")
            yield npz, meta
    except SpeedyNASError:
        raise
    except FileNotFoundError:
        raise SpeedyNASError(f"the {what} is missing: {path} (reinstall the package, or "
                             f"rebuild it with {builder})") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise SpeedyNASError(f"cannot read the {what} {path}: "
                             f"{' '.join(str(err).split())}") from None


def read_table(path: str | Path) -> NB201Table:
    """Load and decode a table file written by :func:`write_table`."""
    path = Path(path)
    with opened_table(path, FORMAT, "NB201 table", "scripts/build_nb201_table.py") as (npz, meta):
        columns = {}
        for name, info in meta["columns"].items():
            values = decode_column(npz[name], int(info["scale"]))
            if values.shape != (meta["rows"],):
                raise SpeedyNASError(f"NB201 table {path}: column {name} has shape "
                                     f"{values.shape}, expected ({meta['rows']},)")
            values.flags.writeable = False
            columns[name] = values
    return NB201Table(columns, meta, path.stem)


@functools.lru_cache(maxsize=None)
def load_table(path: Path = TABLE_PATH) -> NB201Table:
    """A shipped table (default: the NAS-Bench-201 one, :data:`TABLE_PATH`), loaded once per
    process."""
    return read_table(path)


class ShippedTableTruth(GroundTruth):
    """Values of one column of a table shipped with the package, one row per NB201 cell.

    A subclass names its file (``table_path``), what the table is (``title``, ``origin``) and
    declares ``__init__(space, column)`` with its own column choices, so the config lists them.
    """

    table_path: ClassVar[Path]
    title: ClassVar[str]
    origin: ClassVar[str]

    def __init__(self, space: SearchSpace | str, column: str) -> None:
        self.space = search_spaces.create(space) if isinstance(space, str) else space
        if self.space.name != "nb201":
            raise SpeedyNASError(f"ground truth {self.name!r} is {self.title}; the search "
                                 f"space is {self.space.name!r} (use a table file for it)")
        self.table = table = load_table(self.table_path)
        self.column = column
        self._values = table.column(column)
        self.meta = table.meta

    def __len__(self) -> int:
        return int(np.isfinite(self._values).sum())

    def _row(self, arch: Arch | str) -> int:
        if isinstance(arch, str):
            arch = self.space.parse(arch)
        elif getattr(arch, "space_name", "nb201") != "nb201":
            raise SpeedyNASError(f"arch {arch} belongs to the {arch.space_name} space, not nb201")
        return self.space.index_of(arch)

    def lookup(self, arch: Arch | str) -> float | None:
        value = float(self._values[self._row(arch)])
        return value if np.isfinite(value) else None

    def lookup_many(self, archs: Iterable[Arch | str]) -> list[float | None]:
        values = self._values[[self._row(arch) for arch in archs]]
        return [float(v) if np.isfinite(v) else None for v in values]

    def space_values(self) -> list[float]:
        """The column's known values over the whole space (every cell the table knows)."""
        return self._values[np.isfinite(self._values)].tolist()

    def space_points(self, cost: str) -> tuple[list[float], list[float]] | None:
        """(column, parameter count) of every cell both are known for; ``params`` only (the
        NAS-Bench-201 table's ``params_cifar10`` column counts the CIFAR-10 network's parameters
        exactly as ``supernet.measure.arch_parameters`` does)."""
        if cost != "params":
            return None
        params = load_table().column("params_cifar10")
        known = np.isfinite(self._values) & np.isfinite(params)
        return self._values[known].tolist(), params[known].tolist()

    def describe(self) -> str:
        sha = str(self.meta.get("source_sha256", "?"))[:12]
        return (f"{self.name}: {self.title} shipped with the package, column {self.column} "
                f"({len(self)} nb201 archs; {self.origin}, built from "
                f"{self.meta.get('source_file', '?')}, sha256 {sha}...)")


@register_ground_truth("nb201")
class NB201Truth(ShippedTableTruth):
    """True accuracies from the NAS-Bench-201 table shipped with the package (no file needed).

    ``column`` is one of :data:`COLUMNS` (default ``cifar10_test``: CIFAR-10 test accuracy after
    200 epochs, mean over seeds); ``space`` must be the ``nb201`` space."""

    name = "nb201"
    table_path = TABLE_PATH
    title = "the NAS-Bench-201 table"
    origin = "NATS-Bench tss results"

    def __init__(self, space: SearchSpace | str,
                 column: Annotated[Column, Option(
                     help="column of the shipped NAS-Bench-201 table (accuracy in %, 200 "
                          "epochs, mean over seeds, unless its name says otherwise)")
                 ] = "cifar10_test") -> None:
        super().__init__(space, column)
