"""The sensitivity curves as a PNG: two panels, a line per layer, the allocation marked."""

from __future__ import annotations

import struct
import sys

import matplotlib.image
import pytest

from tfadmm import sensitivity_plot
from tfadmm.allocation import Allocation, SensitivityCurves
from tfadmm.errors import MissingDependencyError

GRID = (0.5, 0.9, 0.99)
CURVES = SensitivityCurves(
    GRID, 0.3, 0.9,
    loss={"conv1": (0.4, 0.9, 2.0), "fc1": (0.3, 0.35, 0.6), "fc2": (0.5, 1.5, 3.0)},
    accuracy={"conv1": (0.88, 0.6, 0.2), "fc1": (0.9, 0.89, 0.8), "fc2": (0.85, 0.5, 0.1)},
    seconds=1.5,
)
ALLOCATION = Allocation(
    "sensitivity", 20.0, {"conv1": 0.5, "fc1": 0.99, "fc2": 0.0},
    {"conv1": (500,), "fc1": (400_000,), "fc2": (5_000,)}, CURVES,
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_png_is_a_png_of_the_expected_size(tmp_path):
    path = tmp_path / "curves.png"
    sensitivity_plot.draw_sensitivity(CURVES, path)
    width, height = sensitivity_plot.WIDTH * sensitivity_plot.DPI, (
        sensitivity_plot.HEIGHT * sensitivity_plot.DPI)
    assert _png_size(path) == (width, height) == (1200, 450)
    assert matplotlib.image.imread(path).shape[:2] == (height, width)


def test_each_panel_draws_every_layer_against_sparsity():
    figure = sensitivity_plot.sensitivity_figure(CURVES)
    loss, accuracy = figure.axes
    for axes, values, label in [(loss, CURVES.loss, "validation loss"),
                                (accuracy, CURVES.accuracy, "validation accuracy")]:
        assert axes.get_ylabel() == label
        assert axes.get_xscale() == "logit"
        lines = {line.get_label(): line for line in axes.get_lines()}
        assert set(lines) == {"_unpruned", "conv1", "fc1", "fc2"}
        for layer, points in values.items():
            assert tuple(lines[layer].get_xdata()) == GRID
            assert tuple(lines[layer].get_ydata()) == points
        assert [t.get_text() for t in axes.get_xticklabels()] == ["0.5", "0.9", "0.99"]
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == ["conv1", "fc1", "fc2"]
    assert figure.get_suptitle() == ""


def test_a_narrow_grid_labels_its_ends():
    narrow = SensitivityCurves((0.6, 0.7, 0.8), 0.3, 0.9, {"fc1": (0.3, 0.4, 0.5)},
                               {"fc1": (0.9, 0.8, 0.7)})
    for axes in sensitivity_plot.sensitivity_figure(narrow).axes:
        assert [t.get_text() for t in axes.get_xticklabels()] == ["0.6", "0.8"]


def test_an_allocation_is_marked_on_each_curve_and_named_in_legend_and_title():
    figure = sensitivity_plot.sensitivity_figure(
        CURVES, chosen=ALLOCATION.sparsities,
        title=sensitivity_plot.allocation_title(ALLOCATION, "prune"))
    loss, accuracy = figure.axes
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == [
        "conv1 (allocated 0.5000)", "fc1 (allocated 0.9900)", "fc2 (allocated 0.0000)"]
    # fc2 is left dense (0): no place for its mark on the logit axis.
    marks = [line for line in loss.get_lines() if line.get_label() == "_allocated"]
    assert [(tuple(m.get_xdata()), tuple(m.get_ydata())) for m in marks] == [
        ((0.5,), (0.4,)), ((0.99,), (0.6,))]
    assert figure.get_suptitle() == (
        f"prune: sensitivity allocation at {ALLOCATION.achieved_rate:.1f}x (asked 20x)")


def test_a_mark_between_grid_points_lies_on_the_curve_as_drawn():
    # Halfway between 0.9 and 0.99 on the logit axis; below the grid, towards the unpruned.
    middle = 1 / (1 + (1 / 9 * 1 / 99) ** 0.5)  # logit(middle) = (logit(0.9) + logit(0.99)) / 2
    assert sensitivity_plot._on_curve(middle, GRID, (0.4, 0.9, 2.0), 0.3) == pytest.approx(1.45)
    assert sensitivity_plot._on_curve(0.25, GRID, (0.4, 0.9, 2.0), 0.3) == pytest.approx(0.35)


def test_draw_allocation_writes_the_png(tmp_path):
    path = tmp_path / "sensitivity.png"
    sensitivity_plot.draw_allocation(ALLOCATION, path, name="prune")
    assert _png_size(path) == (1200, 450)


def test_an_allocation_without_curves_is_refused(tmp_path):
    uniform = Allocation("uniform", 20.0, ALLOCATION.sparsities, ALLOCATION.sizes)
    with pytest.raises(ValueError) as caught:
        sensitivity_plot.draw_allocation(uniform, tmp_path / "x.png")
    assert str(caught.value) == (
        "Cannot draw an allocation without sensitivity curves: expected one made with "
        "method='sensitivity'. Received: method='uniform'"
    )
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_drawing_names_the_extra(monkeypatch, tmp_path):
    assert sensitivity_plot.can_draw()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not sensitivity_plot.can_draw()
    with pytest.raises(MissingDependencyError) as caught:
        sensitivity_plot.draw_sensitivity(CURVES, tmp_path / "x.png")
    assert str(caught.value) == (
        "Drawing the sensitivity curves needs matplotlib. Expected an importable `matplotlib` "
        "package (pip install 'tfadmm[plot]'). Received: import of matplotlib halted; None in "
        "sys.modules"
    )
    assert not (tmp_path / "x.png").exists()
    assert sensitivity_plot.MATPLOTLIB_MISSING == (
        "matplotlib is not installed (pip install 'tfadmm[plot]')")
