"""Per-layer sparsities from one overall pruning rate: `tfadmm.allocate`.

The rate is the papers' convention: total weights of the chosen layers divided
by the weights they keep (non-zeros). A layer keeps weights the way
`tfadmm.Sparsity` does: `size - floor(sparsity * size)` per kernel. Weights
that are already zero stay zero: a layer never keeps more than its non-zeros.

Three methods:

- `uniform`: one sparsity for every layer;
- `global`: one magnitude threshold across the layers, with a floor
  (`GLOBAL_FLOOR`) so that no layer is emptied;
- `sensitivity`: each layer is pruned alone (one-shot magnitude) at a grid of
  sparsities and the validation loss measured (forward passes only); the
  allocation then minimises the summed predicted loss increase under the
  kept-weight budget (a fractional knapsack over each layer's convexified
  curve, solved exactly by taking the cheapest damage per removed weight first).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import time

import keras
import numpy as np

from tfadmm.compressible import find_compressible_layers
from tfadmm.constraints.sparsity import Sparsity, kept_count, project_sparsity
from tfadmm.held_out import as_batches, loss_and_accuracy

METHODS = ("uniform", "global", "sensitivity")
DEFAULT_METHOD = "sensitivity"
# The sparsities each layer is measured at (`sensitivity`); 0 is the unpruned model.
DEFAULT_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
RATE_TOLERANCE = 0.01  # the allocation meets `rate` within 1 %
GLOBAL_FLOOR = 0.1  # `global`: a layer keeps at least this share of its uniform allocation


def kept_weights(size, sparsity):
    """How many of `size` weights `tfadmm.Sparsity(sparsity)` keeps."""
    return kept_count(size, sparsity)


def layer_kept(sizes, sparsity):
    """Weights a layer with kernels of `sizes` keeps at `sparsity` (each kernel alone)."""
    return sum(kept_weights(size, sparsity) for size in sizes)


def sparsity_for(sizes, keep):
    """The smallest sparsity at which kernels of `sizes` keep at most `keep` weights.

    For one kernel it keeps exactly `keep` (`1 <= keep <= size`).

    Example:
        >>> sparsity_for([500], 3)  # 0.994: 500 - floor(0.994 * 500) = 3
    """
    total = sum(sizes)
    if keep >= total:
        return 0.0
    if len(sizes) == 1:
        (size,) = sizes
        s = (size - keep) / size
        while kept_weights(size, s) > keep:  # float rounding below an integer
            s = math.nextafter(s, 1.0)
        return s
    low, high = 0.0, max(1.0 - 1.0 / size for size in sizes)
    if layer_kept(sizes, high) > keep:
        return high
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if layer_kept(sizes, mid) > keep else (low, mid)
    return high


@dataclasses.dataclass(frozen=True)
class SensitivityCurves:
    """Validation loss and accuracy with one layer pruned alone, at each sparsity.

    Attributes:
        sparsities: the grid, ascending.
        base_loss: the unpruned model's validation loss.
        base_accuracy: its validation accuracy.
        loss: `{layer: (loss at each grid sparsity, ...)}`.
        accuracy: `{layer: (accuracy at each grid sparsity, ...)}`.
        seconds: how long the analysis took.
    """

    sparsities: tuple
    base_loss: float
    base_accuracy: float
    loss: dict
    accuracy: dict
    seconds: float = 0.0

    def to_dict(self):
        return {"sparsities": list(self.sparsities), "base_loss": self.base_loss,
                "base_accuracy": self.base_accuracy,
                "loss": {k: list(v) for k, v in self.loss.items()},
                "accuracy": {k: list(v) for k, v in self.accuracy.items()},
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data):
        return cls(tuple(data["sparsities"]), data["base_loss"], data["base_accuracy"],
                   {k: tuple(v) for k, v in data["loss"].items()},
                   {k: tuple(v) for k, v in data["accuracy"].items()}, data.get("seconds", 0.0))


@dataclasses.dataclass(frozen=True)
class Allocation:
    """Per-layer sparsities that meet an overall rate.

    Attributes:
        method: `uniform`, `global` or `sensitivity`.
        rate: the rate asked for.
        sparsities: `{layer: sparsity}` in model order.
        sizes: `{layer: (kernel size, ...)}`.
        curves: the `SensitivityCurves` (`sensitivity` only, else None).
    """

    method: str
    rate: float
    sparsities: dict
    sizes: dict
    curves: SensitivityCurves | None = None

    @property
    def kept(self):
        """`{layer: weights kept}`."""
        return {name: layer_kept(self.sizes[name], s) for name, s in self.sparsities.items()}

    @property
    def achieved_rate(self):
        """Total weights of the layers / weights kept."""
        return sum(sum(s) for s in self.sizes.values()) / sum(self.kept.values())

    def targets(self):
        """`{layer: tfadmm.Sparsity(s)}`: `tfadmm.wrap` targets."""
        return {name: Sparsity(s) for name, s in self.sparsities.items()}

    def to_dict(self):
        return {"method": self.method, "rate": self.rate, "sparsities": dict(self.sparsities),
                "sizes": {k: list(v) for k, v in self.sizes.items()},
                "kept": self.kept, "achieved_rate": self.achieved_rate,
                "curves": None if self.curves is None else self.curves.to_dict()}

    @classmethod
    def from_dict(cls, data):
        curves = data.get("curves")
        return cls(data["method"], data["rate"], dict(data["sparsities"]),
                   {k: tuple(v) for k, v in data["sizes"].items()},
                   None if curves is None else SensitivityCurves.from_dict(curves))


def check_rate(rate):
    """Raises ValueError unless `rate` is a number > 1."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 1:
        raise ValueError("Invalid `rate`: expected a number > 1 (total weights / non-zero "
                         f"weights). Received: rate={rate!r}")


def check_method(method):
    """Raises ValueError unless `method` is one of `METHODS`."""
    if method not in METHODS:
        raise ValueError(f"Invalid `method`: expected one of {', '.join(METHODS)}. "
                         f"Received: method={method!r}")


def select_layers(model, layers=None):
    """`{layer: {kernel: variable}}` of the compressible layers `layers` match.

    Args:
        model: a built Keras model.
        layers: layer-name patterns (`"conv*"`); None: every compressible layer.

    Raises:
        ValueError: a pattern that matches no compressible layer.
    """
    found = find_compressible_layers(model)
    if layers is None:
        if not found:
            raise ValueError("Invalid `model`: expected a model with a compressible layer. "
                             "Received: none")
        return found
    if isinstance(layers, str) or not all(isinstance(p, str) for p in layers) or not layers:
        raise ValueError("Invalid `layers`: expected a non-empty list of layer-name patterns. "
                         f"Received: layers={layers!r}")
    for pattern in layers:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in found):
            raise ValueError(
                f"Invalid `layers`: the pattern {pattern!r} matches no compressible layer. "
                f"Compressible layers: {', '.join(found) or '(none)'}"
            )
    return {name: kernels for name, kernels in found.items()
            if any(fnmatch.fnmatchcase(name, p) for p in layers)}


def sensitivity_curves(model, data, *, layers=None, grid=DEFAULT_GRID, on_progress=None):
    """Measures each layer's validation loss and accuracy when pruned alone.

    Every chosen layer is pruned in turn by one-shot magnitude pruning at each
    sparsity of `grid` (its weights are restored afterwards), and the model
    evaluated on `data`: forward passes only.

    Args:
        model: a built Keras classifier (logits or softmax output).
        data: a finite `tf.data` dataset or `PyDataset` of `(x, y)` batches, or
            `(x, y)` arrays.
        layers: layer-name patterns; None: every compressible layer.
        grid: sparsities in (0, 1) to measure at.
        on_progress: optional callable receiving one line per layer measured.

    Returns:
        `SensitivityCurves`.

    Raises:
        ValueError: no or empty `data`, a bad `grid`, or a pattern that
            matches no compressible layer.
    """
    chosen = select_layers(model, layers)
    grid = _check_grid(grid)
    batches = as_batches(data)
    start = time.perf_counter()
    base = loss_and_accuracy(model, batches)
    loss, accuracy = {}, {}
    for number, (name, kernels) in enumerate(chosen.items(), 1):
        originals = {k: keras.ops.convert_to_numpy(v) for k, v in kernels.items()}
        nonzero = sum(int(np.count_nonzero(w)) for w in originals.values())
        sizes = [w.size for w in originals.values()]
        points = []
        try:
            for s in grid:
                if layer_kept(sizes, s) >= nonzero:  # already that sparse: nothing changes
                    points.append(base)
                    continue
                for k, variable in kernels.items():
                    variable.assign(project_sparsity(originals[k], s).values)
                points.append(loss_and_accuracy(model, batches))
        finally:
            for k, variable in kernels.items():
                variable.assign(originals[k])
        loss[name] = tuple(p[0] for p in points)
        accuracy[name] = tuple(p[1] for p in points)
        if on_progress is not None:
            on_progress(f"sensitivity {number}/{len(chosen)}: {name} at {len(grid)} "
                        f"sparsities ({time.perf_counter() - start:.1f} s)")
    return SensitivityCurves(grid, base[0], base[1], loss, accuracy,
                             time.perf_counter() - start)


def plan_allocation(model, rate, *, method=DEFAULT_METHOD, data=None, layers=None,
                    grid=DEFAULT_GRID, curves=None, on_progress=None):
    """Like `allocate`, but returns the whole `Allocation` record (with the curves).

    Args:
        curves: `SensitivityCurves` already measured on this model (`sensitivity`):
            `data` is then not needed.
        (the others as for `allocate`)
    """
    check_rate(rate)
    check_method(method)
    chosen = select_layers(model, layers)
    if method == "sensitivity" and curves is None:
        if data is None:
            raise ValueError("method='sensitivity' needs validation `data`: expected a tf.data "
                             "dataset of (x, y) batches or (x, y) arrays. Received: data=None")
        curves = sensitivity_curves(model, data, layers=layers, grid=grid,
                                    on_progress=on_progress)
    weights = {name: [keras.ops.convert_to_numpy(v) for v in kernels.values()]
               for name, kernels in chosen.items()}
    sizes = {name: tuple(w.size for w in ws) for name, ws in weights.items()}
    nonzero = {name: sum(int(np.count_nonzero(w)) for w in ws) for name, ws in weights.items()}
    total = sum(sum(s) for s in sizes.values())
    budget = round(total / rate)
    if budget < len(chosen) or budget > sum(nonzero.values()):
        low = total / max(sum(nonzero.values()), 1)
        raise ValueError(
            f"Invalid `rate`: expected a number in ({max(1.0, low):.4g}, "
            f"{total / len(chosen):.4g}] for layers {', '.join(chosen)} ({total:,} weights, "
            f"{sum(nonzero.values()):,} non-zero; each layer keeps at least one). "
            f"Received: rate={rate!r}"
        )
    if method == "uniform":
        sparsities = _uniform(sizes, nonzero, budget)
    else:
        if method == "global":
            keep = global_keep(weights, budget, {
                name: max(1, math.ceil(GLOBAL_FLOOR * sum(sizes[name]) / rate))
                for name in sizes})
        else:
            keep = sensitivity_keep(curves, sizes, nonzero, budget)
            if sum(keep.values()) > budget:
                raise ValueError(
                    f"Invalid `rate`: the sensitivity grid reaches at most "
                    f"{total / sum(keep.values()):.4g}x (sparsity {max(curves.sparsities)} in "
                    "every layer): expected a lower rate, or a `grid` with higher sparsities. "
                    f"Received: rate={rate!r}"
                )
        sparsities = {name: sparsity_for(sizes[name], keep[name]) for name in sizes}
    allocation = Allocation(method, float(rate), sparsities, sizes,
                            curves if method == "sensitivity" else None)
    if abs(allocation.achieved_rate / rate - 1) > RATE_TOLERANCE:
        raise ValueError(
            f"Cannot meet `rate` within {RATE_TOLERANCE:.0%} with method={method!r}: the layers "
            f"are too small to round to it ({total:,} weights). Received: rate={rate!r}, "
            f"reached {allocation.achieved_rate:.4g}"
        )
    return allocation


def allocate(model, rate, *, method=DEFAULT_METHOD, data=None, layers=None, grid=DEFAULT_GRID,
             on_progress=None):
    """Per-layer sparsities that prune the chosen layers by an overall `rate`.

    Args:
        model: a built Keras model (for `sensitivity`, a classifier).
        rate: total weights of the chosen layers / their non-zeros after
            pruning, a number > 1 (`246` for 246x); met within 1 %.
        method: `"uniform"` (one sparsity), `"global"` (one magnitude
            threshold, no layer emptied) or `"sensitivity"` (measured on `data`).
        data: validation data for `sensitivity`: a finite `tf.data` dataset or
            `PyDataset` of `(x, y)` batches, or `(x, y)` arrays.
        layers: layer-name patterns (`["conv*", "fc*"]`); None: every
            compressible layer.
        grid: the sparsities `sensitivity` measures each layer at.
        on_progress: optional callable receiving one progress line per layer.

    Returns:
        `{layer_name: tfadmm.Sparsity(s)}`, usable as `tfadmm.wrap` targets.

    Raises:
        ValueError: rate <= 1 or beyond what the layers can reach, an unknown
            method, no data for `sensitivity`, or a pattern matching no layer.

    Example:
        >>> targets = tfadmm.allocate(model, 246, data=splits.validation)
        >>> admm_model = tfadmm.wrap(model, targets)
    """
    return plan_allocation(model, rate, method=method, data=data, layers=layers, grid=grid,
                           on_progress=on_progress).targets()


# -- the three methods, on weight counts ------------------------------------------


def _uniform(sizes, nonzero, budget):
    """One sparsity s for every layer (at least each layer's present zeros) keeping ~`budget`."""

    def kept(s):
        return sum(min(layer_kept(sizes[n], s), nonzero[n]) for n in sizes)

    low, high = 0.0, math.nextafter(1.0, 0.0)
    for _ in range(64):
        mid = (low + high) / 2
        low, high = (mid, high) if kept(mid) > budget else (low, mid)
    s = high if abs(kept(high) - budget) <= abs(kept(low) - budget) else low
    return {name: max(s, sparsity_for(sizes[name], nonzero[name])) for name in sizes}


def global_keep(weights, budget, floor):
    """Weights each layer keeps under one magnitude threshold, with a per-layer floor.

    Keeps the `budget` largest magnitudes across all layers, except that a
    layer keeps at least `floor[layer]` (never more than its non-zeros).

    Args:
        weights: `{layer: [kernel array, ...]}`.
        budget: the total number of weights to keep.
        floor: `{layer: minimum weights kept}`.

    Returns:
        `{layer: weights kept}`, summing to `budget` (ties aside).
    """
    magnitudes = {n: np.sort(np.concatenate([np.abs(w).ravel() for w in ws]))
                  for n, ws in weights.items()}
    nonzero = {n: int(np.count_nonzero(m)) for n, m in magnitudes.items()}
    lower = {n: min(floor[n], nonzero[n]) for n in weights}
    every = np.sort(np.concatenate(list(magnitudes.values())))[::-1]

    def keep_at(threshold):
        return {n: max(lower[n], int(m.size - np.searchsorted(m, threshold, side="left")))
                for n, m in magnitudes.items()}

    # The smallest count of top magnitudes whose threshold keeps at least `budget` in all.
    low, high = 0, int(np.count_nonzero(every)) - 1
    while low < high:
        mid = (low + high) // 2
        if sum(keep_at(every[mid]).values()) >= budget:
            high = mid
        else:
            low = mid + 1
    return keep_at(every[low])


def sensitivity_keep(curves, sizes, nonzero, budget):
    """Weights each layer keeps, minimising the summed predicted loss increase.

    A layer's predicted damage at a grid point is its measured loss increase
    (made non-decreasing with sparsity); between points it follows the lower
    convex hull, so taking hull segments in order of damage per removed weight,
    across layers, until the budget is met is optimal for that prediction.
    A layer's sparsity stays within the grid measured.

    Returns:
        `{layer: weights kept}` summing to `budget`; more when the budget
        needs sparsities beyond the grid (each layer then at its last point).
    """
    segments = []  # (damage per removed weight, layer, from keep, to keep)
    keep = {}
    for name in sizes:
        points = [(nonzero[name], 0.0)]
        worst = 0.0
        for s, loss in zip(curves.sparsities, curves.loss[name], strict=True):
            k = min(layer_kept(sizes[name], s), nonzero[name])
            worst = max(worst, loss - curves.base_loss)
            if k < points[-1][0]:
                points.append((k, worst))
        hull = _lower_hull(points)
        keep[name] = hull[0][0]
        for (k0, d0), (k1, d1) in zip(hull, hull[1:], strict=False):
            segments.append(((d1 - d0) / (k0 - k1), name, k0, k1))
    excess = sum(keep.values()) - budget
    for _, name, k0, k1 in sorted(segments):
        if excess <= 0:
            break
        removed = min(k0 - k1, excess)
        keep[name] -= removed
        excess -= removed
    return keep


def _lower_hull(points):
    """The lower convex hull of `(keep, damage)` points, keep descending."""
    hull = []
    for point in points:
        while len(hull) >= 2:
            (k0, d0), (k1, d1) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or above the chord.
            if (d1 - d0) * (k0 - point[0]) >= (point[1] - d0) * (k0 - k1):
                hull.pop()
            else:
                break
        hull.append(point)
    return hull


# -- measuring ---------------------------------------------------------------------


def _check_grid(grid):
    values = tuple(grid) if isinstance(grid, (list, tuple)) else ()
    if not values or any(isinstance(s, bool) or not isinstance(s, (int, float))
                         or not 0 < s < 1 for s in values):
        raise ValueError("Invalid `grid`: expected a non-empty list of sparsities in (0, 1). "
                         f"Received: grid={grid!r}")
    return tuple(sorted(set(float(s) for s in values)))
