"""NB201 cells trained stand-alone at the CPU supernet's scale: learning curves, and the
ground-truth source ``nb201_c8n1``.

``tables/nb201_c8n1_curves.npz`` holds NB201 cells (the reported candidate draw, seed 123)
trained from scratch as the CPU supernets are (C = 8, N = 1, 32 px, the 25k training half of
split seed 0, batch 64, SGD lr 0.025 cosine, 12 epochs: ``meta["recipe"]``), built by
``scripts/build_nb201_curves.py`` from the records of ``experiments/matched_scale.py``.
Per cell: per epoch the running train loss and accuracy, loss and accuracy on a fixed 5,000
validation images and on the 10,000 test images (:data:`EPOCH_METRICS`); the training loss of
every minibatch of the first epochs; and after the last epoch the whole validation half.

As a ground truth (``--ground-truth nb201_c8n1``, ``ground_truth.column=...``), a column is
``test_acc`` (the last epoch's test accuracy, the default), ``val_acc`` (the whole validation
half after the last epoch), or an early-stopped ``<metric>@<epoch>`` such as ``test_acc@6``;
a cell the table does not hold is not known (``None``).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

import search_spaces
from speedynas_core.errors import SpeedyNASError, shown
from speedynas_core.plugins import Option

from .base import Arch, GroundTruth, SearchSpace
from .ground_truth import register_ground_truth
from .nb201_table import TABLES_DIR, opened_table

__all__ = ["CURVES_PATH", "EPOCH_METRICS", "FORMAT", "Curves", "MatchedScaleTruth",
           "load_curves", "read_curves"]

#: The shipped learning-curve table.
CURVES_PATH = TABLES_DIR / "nb201_c8n1_curves.npz"
#: Format tag written into ``meta``; a file with another tag is refused.
FORMAT = "speedynas-nb201-curves/1"
#: Per-epoch metrics, each an ``epoch_<metric>`` array of shape (cells, epochs).
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
_EARLY = re.compile(r"^(?P<metric>[a-z_]+)@(?P<epoch>[0-9]+)$")


@dataclass(frozen=True)
class Curves:
    """The table decoded: ``rows`` (each cell's ``space.index_of``), ``archs`` (their texts),
    ``epoch[metric]`` (cells x epochs), ``minibatch_loss`` (cells x first-epoch minibatches),
    ``final[name]`` (``val_acc_all``, ``val_loss_all``) and ``meta``."""

    rows: np.ndarray
    archs: tuple[str, ...]
    epoch: Mapping[str, np.ndarray]
    minibatch_loss: np.ndarray
    final: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]

    @property
    def epochs(self) -> int:
        """Epochs each cell was trained for."""
        return int(self.epoch["test_acc"].shape[1])

    def columns(self) -> list[str]:
        """Every ground-truth column: ``test_acc``, ``val_acc`` and ``<metric>@<epoch>``."""
        return ["test_acc", "val_acc", *(f"{m}@{e}" for m in EPOCH_METRICS
                                         for e in range(1, self.epochs + 1))]

    def column(self, name: str) -> np.ndarray:
        """One column's values, one per cell; an unknown name is a one-line error listing the
        forms that are valid."""
        if name == "test_acc":
            return self.epoch["test_acc"][:, -1]
        if name == "val_acc":
            return self.final["val_acc_all"]
        match = _EARLY.match(name)
        if match and match["metric"] in EPOCH_METRICS and 1 <= int(match["epoch"]) <= self.epochs:
            return self.epoch[match["metric"]][:, int(match["epoch"]) - 1]
        raise SpeedyNASError(f"the nb201_c8n1 table has no column {shown(name)}; valid: test_acc, "
                             f"val_acc, or <metric>@<epoch> with metric one of "
                             f"{', '.join(EPOCH_METRICS)} and epoch 1..{self.epochs}")


def read_curves(path: str | Path) -> Curves:
    """Load a curve table written by ``scripts/build_nb201_curves.py``."""
    path = Path(path)
    with opened_table(path, FORMAT, "curve table", "scripts/build_nb201_curves.py") as (npz,
                                                                                       meta):
        rows = npz["rows"].astype(np.int64)
        epoch = {m: npz[f"epoch_{m}"].astype(np.float64) for m in EPOCH_METRICS}
        final = {k: npz[f"final_{k}"].astype(np.float64) for k in ("val_acc_all",
                                                                  "val_loss_all")}
        minibatch = npz["minibatch_loss"].astype(np.float64)
    shapes = {len(rows), *(len(a) for a in (*epoch.values(), *final.values(), minibatch))}
    if len(shapes) != 1 or len(set(rows.tolist())) != len(rows):
        raise SpeedyNASError(f"curve table {path}: its arrays disagree on the cells")
    space = search_spaces.create("nb201")
    archs = tuple(meta.get("archs", ()))
    if [space.index_of(space.parse(a)) for a in archs] != rows.tolist():
        raise SpeedyNASError(f"curve table {path}: meta's archs do not match its rows")
    return Curves(rows, archs, epoch, minibatch, final, meta)


@functools.lru_cache(maxsize=None)
def load_curves(path: Path = CURVES_PATH) -> Curves:
    """The shipped curve table (:data:`CURVES_PATH`), loaded once per process."""
    return read_curves(path)


@register_ground_truth("nb201_c8n1")
class MatchedScaleTruth(GroundTruth):
    """NB201 cells trained stand-alone at the CPU supernet's scale (C = 8, N = 1, 12 epochs);
    one column of :class:`Curves` (default ``test_acc``); cells not trained are not known."""

    name = "nb201_c8n1"

    def __init__(self, space: SearchSpace | str,
                 column: Annotated[str, Option(
                     help="test_acc (last epoch), val_acc (whole validation half) or an "
                          "early-stopped <metric>@<epoch>, e.g. test_acc@6")] = "test_acc",
                 ) -> None:
        self.space = search_spaces.create(space) if isinstance(space, str) else space
        if self.space.name != "nb201":
            raise SpeedyNASError(f"ground truth 'nb201_c8n1' holds NB201 cells; the search "
                                 f"space is {self.space.name!r}")
        self.curves = load_curves()
        self.column = column
        values = self.curves.column(column)
        self._by_row = dict(zip(self.curves.rows.tolist(), values.tolist()))

    def __len__(self) -> int:
        return len(self._by_row)

    def lookup(self, arch: Arch | str) -> float | None:
        if isinstance(arch, str):
            arch = self.space.parse(arch)
        value = self._by_row.get(self.space.index_of(arch))
        return value if value is not None and np.isfinite(value) else None

    def describe(self) -> str:
        return (f"NB201 cells trained stand-alone at C=8, N=1 for {self.curves.epochs} epochs "
                f"({len(self)} cells), {self.column}")
