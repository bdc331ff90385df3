"""Structured sparsity: whole output filters, or whole input channels, are zero.

A kernel's output filters are the slices along its last axis (a Conv kernel
`(kh, kw, in, out)`'s `out` filters, a Dense kernel `(in, out)`'s units); its
input channels are the slices along axis -2. Removing a zero filter (or a zero
input channel) makes the layer smaller, not only sparser: `tfadmm.surgery`
rebuilds the model without them, so it runs faster (StructADMM, Zhang et al.
2018).

The projection onto "at most k non-zero slices" keeps the k slices with the
largest L2 norm: dropping a slice costs its squared norm, so the k kept ones
must be the k largest. The counts follow `Sparsity`: `floor(sparsity * n)` of
the `n` slices are zeroed.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tfadmm.constraints.base import Constraint, Projection, full_support
from tfadmm.constraints.sparsity import checked_sparsity, top_k_mask


def project_slices(x, sparsity, axis, support=None):
    """Projects `x` onto tensors with at most `n - floor(sparsity * n)` non-zero slices.

    Solves `argmin_y ||x - y||^2` subject to: at most `k` slices of `y` along
    `axis` are non-zero, and `y = 0` outside `support`. A slice keeps its
    supported entries; the `k` slices whose supported entries have the largest
    squared norm are kept (ties go to the lower index; a slice with no support
    left never outranks one with support).

    Args:
        x: a float tensor.
        sparsity: the fraction of slices set to zero, in [0, 1).
        axis: the axis whose slices are kept or zeroed (-1: output filters,
            -2: input channels).
        support: optional 0/1 tensor; entries where it is 0 stay 0.

    Returns:
        A `Projection(values, support)`.

    Example:
        >>> project_slices(np.array([[3., 0.1], [4., 0.2]]), 0.5, axis=-1).values
        # [[3., 0.], [4., 0.]]
    """
    axis = axis % len(x.shape)
    count = x.shape[axis]
    keep = count - math.floor(sparsity * count)
    support = full_support(x, support)
    others = tuple(a for a in range(len(x.shape)) if a != axis)
    energy = ops.sum(ops.square(x * support), axis=others)
    alive = ops.max(support, axis=others) > 0
    # A slice with no support left ranks below every other.
    scores = ops.where(alive, energy, -ops.ones_like(energy))
    chosen = top_k_mask(scores, keep)
    shape = [1] * len(x.shape)
    shape[axis] = count
    mask = ops.reshape(chosen, shape) * support
    return Projection(x * mask, mask)


class _SliceSparsity(Constraint):
    """At most `1 - sparsity` of a kernel's slices along `AXIS` are non-zero."""

    AXIS = -1
    WHAT = "slices"

    def __init__(self, sparsity):
        self.sparsity = checked_sparsity(sparsity)

    def project(self, x, support=None):
        return project_slices(x, self.sparsity, self.AXIS, support)

    def check_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(
                f"{type(self).__name__} prunes whole {self.WHAT}: expected a kernel with "
                "at least 2 dimensions (Dense (in, out), Conv (..., in, out)). "
                f"Received: shape={tuple(shape)}"
            )

    def get_config(self):
        return {"sparsity": self.sparsity}


@keras.saving.register_keras_serializable(package="tfadmm")
class FilterSparsity(_SliceSparsity):
    """At most `1 - sparsity` of a kernel's output filters are non-zero.

    Filters (the last kernel axis: a Conv's output channels, a Dense layer's
    units) are ranked by L2 norm; `floor(sparsity * filters)` are zeroed.
    `tfadmm.strip(model, shrink=True)` then removes them.

    Args:
        sparsity: the fraction of filters set to zero, a number in [0, 1).

    Example:
        >>> tfadmm.wrap(model, {"conv*": tfadmm.FilterSparsity(0.5)})
        >>> tfadmm.FilterSparsity(0.5) & tfadmm.Quantize(8)  # then quantize the survivors
    """

    AXIS = -1
    WHAT = "output filters"


@keras.saving.register_keras_serializable(package="tfadmm")
class ChannelSparsity(_SliceSparsity):
    """At most `1 - sparsity` of a kernel's input channels are non-zero.

    Input channels (axis -2 of a Conv or Dense kernel) are ranked by L2 norm;
    `floor(sparsity * channels)` are zeroed. The filters that produced them
    are then unused, and `tfadmm.strip(model, shrink=True)` removes them.

    Args:
        sparsity: the fraction of input channels set to zero, in [0, 1).
    """

    AXIS = -2
    WHAT = "input channels"
