"""Matplotlib figures drawn without pyplot (no global backend state) and saved atomically;
matplotlib is imported only when a figure is made."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speedynas_core.atomic_io import atomic_writer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["legend_outside", "line_styles", "new_figure", "save_figure"]

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
