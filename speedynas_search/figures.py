"""Matplotlib figures drawn without pyplot (no global backend state) and saved atomically;
matplotlib is imported only when a figure is made."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speedynas_core.atomic_io import atomic_writer

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["legend_outside", "line_styles", "magnitude_axis", "new_figure", "panel_grid",
           "save_figure"]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:grey", "tab:olive", "tab:cyan")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def panel_grid(count: int, width: float, height: float,
               ncols: int = 3) -> tuple[Figure, list[Axes]]:
    """A new figure holding ``count`` panels of ``width`` x ``height`` inches, row by row in
    at most ``ncols`` columns; the grid's unused cells are hidden."""
    ncols = min(ncols, max(1, count))
    nrows = max(1, math.ceil(count / ncols))
    fig = new_figure(width * ncols, height * nrows)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def magnitude_axis(ax: Axes, values: Sequence[float], label: str) -> None:
    """The x axis of positive ``values`` such as params or FLOPs: logarithmic when they span
    a decade or more, with labelled ticks at 1, 2 and 5 times each power of ten; linear
    otherwise (a log axis over less than a decade shows one labelled tick or none). Ticks in
    engineering notation (``200k``, ``1.5M``); the label says which scale."""
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    finite = [v for v in values if math.isfinite(v)]
    logarithmic = bool(finite) and min(finite) > 0 and max(finite) >= 10 * min(finite)
    if logarithmic:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel(f"{label} (log scale)" if logarithmic else label, fontsize=8)


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` to ``path`` as a PNG, atomically."""
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png", dpi=100)


def line_styles(count: int) -> list[dict[str, Any]]:
    """``count`` plot styles (colour, marker, line style) that differ pairwise in at least two
    of the three (up to 32 styles, then they repeat), so lines stay apart in grey print and
    for colour-blind readers."""
    combos = itertools.cycle(itertools.product(_DASHES, _MARKERS))
    return [{"color": _COLOURS[i % len(_COLOURS)], "marker": marker, "linestyle": dash}
            for i, (dash, marker) in zip(range(count), combos)]


def legend_outside(fig: Figure, **options: Any) -> None:
    """One legend for the figure, to the right of the axes (never over the data)."""
    fig.legend(loc="outside right upper", fontsize=8, **options)
