"""Matplotlib figures drawn without pyplot (no global backend state) and saved atomically;
matplotlib is imported only when a figure is made."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.atomic_io import atomic_writer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure"]


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
