"""Progressive hard mapping of quantized kernels, as in the authors' code.

Instead of snapping every weight of a quantized kernel to its level at once,
map a share (default 30 %) of them, those already closest to their levels,
freeze them, retrain the rest, and repeat until every weight is mapped. The
scale is fitted once, at the first mapping step, and kept: later steps snap
the retrained weights to the levels of that scale.

`tfadmm.project(model, fraction=0.3)` is one step (the state lives in each
kernel's `KernelState`, so a `.keras` save in between works);
`tfadmm.map_progressively` runs the whole loop. This module holds the per-kernel
math; the model-level operations are in `tfadmm.wrapping`.
"""

from __future__ import annotations

import math
import numbers

from keras import ops

from tfadmm.constraints.base import Chain, Projection
from tfadmm.constraints.quantization import Quantizer
from tfadmm.constraints.sparsity import top_k_mask

DEFAULT_FRACTION = 0.3


def split_quantizer(constraint):
    """`(pruning, quantizer)`: the parts of a constraint that maps progressively.

    `Quantize(4)` gives `(None, Quantize(4))`; `Sparsity(0.9) & Quantize(4)`
    gives `(Sparsity(0.9), Quantize(4))`: the pruning maps fully at the first
    step, the quantization progressively. Any other constraint gives
    `(constraint, None)`: it maps fully at the first step.
    """
    if isinstance(constraint, Quantizer):
        return None, constraint
    if (
        isinstance(constraint, Chain)
        and isinstance(constraint.second, Quantizer)
        and not constraint.first.freezes_values
    ):
        return constraint.first, constraint.second
    return constraint, None


def fit(constraint, w, support):
    """The first mapping step's projection of `w`, and the scale it used.

    Returns:
        `(Projection, scale)`; the scale is None for a constraint without a
        quantizer part (its projection is then final).
    """
    pruning, quantizer = split_quantizer(constraint)
    if quantizer is None:
        return constraint.project(w, support), None
    if pruning is not None:
        kept = pruning.project(w, support)
        w, support = kept.values, kept.support
    scale = quantizer.fit_scale(w, support)
    return Projection(quantizer.quantize(w, scale, support), support), scale


def channel_scale(scale, shape):
    """A scale of keepdims shape as one value per output channel (`shape[-1:]`)."""
    return ops.broadcast_to(ops.reshape(scale, (-1,)), tuple(shape[-1:]))


def step_count(fraction, total):
    """Weights one step maps: `ceil(fraction * total)`, everything for None."""
    if fraction is None:
        return total
    return min(total, max(1, math.ceil(round(fraction * total, 6))))


def closest(w, levels, scale, candidates, count):
    """The 0/1 mask of the `count` candidates closest to their levels.

    The distance `|w - level| / scale` is measured in units of the scale, so
    channels with different scales compare fairly; ties go to the lower index.
    """
    distance = ops.abs(w - levels) / ops.where(scale > 0, scale, ops.ones_like(scale))
    scores = ops.where(candidates > 0, -distance, float("-inf"))
    return top_k_mask(scores, count) * candidates


def check_fraction(fraction):
    ok = fraction is None or (
        isinstance(fraction, numbers.Real)
        and not isinstance(fraction, bool)
        and 0 < fraction <= 1
    )
    if not ok:
        raise ValueError(
            "Invalid `fraction`: expected a number in (0, 1], or None to map every "
            f"weight at once. Received: fraction={fraction!r}"
        )
