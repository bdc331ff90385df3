"""The sensitivity curves as a PNG: validation loss and accuracy against sparsity, per layer.

Two panels (loss, accuracy), one line per layer on a logit sparsity axis (0.5, 0.9, 0.99,
0.999 evenly apart), the unpruned model as a dotted line, and, for an `Allocation`, each
layer's allocated sparsity marked on its curve.

matplotlib is optional (`pip install 'tfadmm[plot]'`). It is imported at the first drawing,
and only its object API and the Agg canvas are used: no pyplot, no global state, no window.
"""

from __future__ import annotations

import numpy as np

from tfadmm.errors import MissingDependencyError

WIDTH, HEIGHT = 12.0, 4.5  # inches
DPI = 100  # a PNG of WIDTH * DPI x HEIGHT * DPI pixels
TICKS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)  # the sparsity axis' labels, within the grid
#: Why no PNG is drawn, for a run's or plan's events.
MATPLOTLIB_MISSING = "matplotlib is not installed (pip install 'tfadmm[plot]')"


def _matplotlib():
    """`(Figure, FigureCanvasAgg)`.

    Raises:
        MissingDependencyError: matplotlib cannot be imported.
    """
    try:
        from matplotlib import figure
        from matplotlib.backends import backend_agg
    except ImportError as error:
        raise MissingDependencyError(
            "Drawing the sensitivity curves needs matplotlib. Expected an importable "
            f"`matplotlib` package (pip install 'tfadmm[plot]'). Received: {error}"
        ) from error
    return figure.Figure, backend_agg.FigureCanvasAgg


def can_draw():
    """Whether matplotlib is importable (False: `MATPLOTLIB_MISSING` says why)."""
    try:
        _matplotlib()
    except MissingDependencyError:
        return False
    return True


def sensitivity_figure(curves, *, chosen=None, title=None):
    """The curves as a matplotlib `Figure` (on an Agg canvas), not yet saved.

    Args:
        curves: `tfadmm.SensitivityCurves`.
        chosen: optional `{layer: sparsity}` (an `Allocation`'s `sparsities`): marked
            on each layer's curve and named in the legend.
        title: optional title above the panels.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    canvas_class(figure)
    chosen = chosen or {}
    grid = np.asarray(curves.sparsities, dtype=float)
    panels = figure.subplots(1, 2)
    for axes, values, base, label in [
        (panels[0], curves.loss, curves.base_loss, "validation loss"),
        (panels[1], curves.accuracy, curves.base_accuracy, "validation accuracy"),
    ]:
        axes.axhline(base, color="0.5", linestyle=":", linewidth=1, label="_unpruned")
        for layer, points in values.items():
            name = layer if layer not in chosen else f"{layer} (allocated {chosen[layer]:.4f})"
            (line,) = axes.plot(grid, points, marker=".", label=name)
            s = chosen.get(layer)
            if s is not None and s > 0:  # a layer left dense has no place on the logit axis
                y = _on_curve(s, grid, points, base)
                axes.plot([s], [y], marker="o", markersize=9, color=line.get_color(),
                          markeredgecolor="black", linestyle="none", label="_allocated")
        axes.set_xscale("logit")
        ticks = [t for t in TICKS if grid.min() <= t <= grid.max()]
        if len(ticks) < 2:  # a narrow grid: its ends
            ticks = sorted({float(grid.min()), float(grid.max())})
        axes.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
        axes.set_xticks([], minor=True)
        axes.set_xlabel("sparsity of the layer pruned alone")
        axes.set_ylabel(label)
        axes.set_title(f"{label} (dotted: unpruned)", fontsize="medium")
        axes.grid(True, which="major", alpha=0.3)
    panels[1].legend(loc="best", fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def _logit(s):
    s = np.asarray(s, dtype=float)
    return np.log(s / (1 - s))


def _on_curve(s, grid, points, base):
    """The curve's value at sparsity `s`, as drawn: straight between the grid points on
    the logit axis, and from the unpruned model (sparsity 0) up to the first one."""
    if s < grid[0]:
        return float(np.interp(s, [0.0, grid[0]], [base, points[0]]))
    return float(np.interp(_logit(s), _logit(grid), points))


def write_png(figure, path):
    """Saves `figure` as a PNG at `path` (whatever its suffix)."""
    figure.savefig(path, format="png", dpi=DPI)


def draw_sensitivity(curves, path, *, chosen=None, title=None):
    """Draws `curves` (see `sensitivity_figure`) to a PNG at `path`.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    write_png(sensitivity_figure(curves, chosen=chosen, title=title), path)


def allocation_title(allocation, name=None):
    """`"<name>: sensitivity allocation at 20.0x (asked 20x)"`: a PNG's title."""
    text = (f"{allocation.method} allocation at {allocation.achieved_rate:.1f}x "
            f"(asked {allocation.rate:g}x)")
    return text if name is None else f"{name}: {text}"


def draw_allocation(allocation, path, *, name=None):
    """Draws an `Allocation`'s curves with its sparsities marked to a PNG at `path`.

    Args:
        allocation: a `tfadmm.Allocation` with curves (`method="sensitivity"`).
        path: the PNG file.
        name: optional name for the title (a recipe stage's).

    Raises:
        ValueError: the allocation has no curves.
        MissingDependencyError: matplotlib is not installed.
    """
    if allocation.curves is None:
        raise ValueError(
            "Cannot draw an allocation without sensitivity curves: expected one made with "
            f"method='sensitivity'. Received: method={allocation.method!r}"
        )
    draw_sensitivity(allocation.curves, path, chosen=allocation.sparsities,
                     title=allocation_title(allocation, name))
