"""Figures through matplotlib's object API (``matplotlib.figure.Figure``), for every package that draws.

Library functions never touch pyplot or ``matplotlib.use``: both are process-wide state (the backend, the
list of open figures) that belongs to the caller, a notebook or an application with its own GUI. A
``Figure`` made here is drawn by the Agg canvas when saved and freed like any object, so nothing has to be
closed. matplotlib is imported inside the functions (it is heavy); this module imports nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """A new ``Figure`` and its axes, as ``pyplot.subplots`` would return them, without pyplot.

    Args:
        nrows: rows of axes.
        ncols: columns of axes.
        figsize: ``(width, height)`` in inches.
        kwargs: passed to ``Figure.subplots`` (``sharex``, ``squeeze``, ``subplot_kw``, ...).

    Returns:
        ``(figure, axes)``; ``axes`` is one ``Axes`` for 1 x 1, else an array of them.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def figure(*, figsize: tuple[float, float], dpi: float | None = None) -> Any:
    """A new empty ``Figure`` (for layouts ``subplots`` does not make: ``add_axes``, ``add_gridspec``)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi)


def colormap(name: str) -> Any:
    """A registered colormap by name (``tab10``), the object ``pyplot.get_cmap`` returns."""
    import matplotlib

    return matplotlib.colormaps[name]


def save_png(fig: Any, path: Path, *, dpi: float = 110, tight: bool = True) -> Path:
    """Save a figure as PNG (after ``tight_layout`` unless ``tight`` is False); return ``path``."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return Path(path)
