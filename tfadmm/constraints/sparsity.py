"""Unstructured sparsity: keep the k largest weights of a tensor."""

from __future__ import annotations

import math

import keras
from keras import ops

from tfadmm.constraints.base import Constraint, Projection, full_support


def top_k_mask(scores, k):
    """The 0/1 mask of the `k` largest entries of `scores`.

    Ties are broken deterministically: among equal scores, the lower flat index
    wins (the order of `top_k`).

    Example:
        >>> top_k_mask(np.array([[3., 1.], [2., 2.]]), 2)  # [[1, 0], [1, 0]]
    """
    flat = ops.reshape(scores, (-1,))
    size = flat.shape[0]
    if k >= size:
        return ops.ones_like(scores)
    if k <= 0:
        return ops.zeros_like(scores)
    _, indices = ops.top_k(flat, k, sorted=True)
    mask = ops.scatter(
        ops.expand_dims(indices, -1), ops.ones((k,), dtype=scores.dtype), (size,)
    )
    return ops.reshape(mask, ops.shape(scores))


def kept_count(size, sparsity):
    """How many of `size` weights sparsity `sparsity` keeps: `size - floor(sparsity * size)`."""
    return size - math.floor(sparsity * size)


def project_sparsity(x, sparsity, support=None):
    """Projects `x` onto tensors with at most `size - floor(sparsity * size)` non-zeros.

    Solves `argmin_y ||x - y||^2` subject to `||y||_0 <= k` and `y = 0` outside
    `support`: keep the `k` entries of largest magnitude inside the support.

    Args:
        x: a float tensor.
        sparsity: the fraction of zeros, in [0, 1).
        support: optional 0/1 tensor; entries where it is 0 stay 0.

    Returns:
        A `Projection(values, support)`; `values` has exactly
        `floor(sparsity * size)` zeros unless `support` already had more, or
        `x` has zeros among its largest entries.
    """
    keep = kept_count(math.prod(x.shape), sparsity)
    support = full_support(x, support)
    # Entries outside the support rank below every admissible one.
    scores = ops.where(support > 0, ops.abs(x), -ops.ones_like(x))
    mask = top_k_mask(scores, keep) * support
    return Projection(x * mask, mask)


def checked_sparsity(sparsity):
    """`sparsity` as a float, or a ValueError unless it is a number in [0, 1)."""
    if (
        isinstance(sparsity, bool)
        or not isinstance(sparsity, (int, float))
        or not 0 <= sparsity < 1
    ):
        raise ValueError(
            "Invalid `sparsity`: expected a number in [0, 1). "
            f"Received: sparsity={sparsity!r}"
        )
    return float(sparsity)


@keras.saving.register_keras_serializable(package="tfadmm")
class Sparsity(Constraint):
    """At most `1 - sparsity` of the tensor's weights are non-zero.

    Args:
        sparsity: the fraction of weights set to zero, a number in [0, 1).
            `Sparsity(0.9)` keeps the 10 % largest magnitudes (10x pruning).

    Example:
        >>> tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.99)})
    """

    def __init__(self, sparsity):
        self.sparsity = checked_sparsity(sparsity)

    def project(self, x, support=None):
        return project_sparsity(x, self.sparsity, support)

    def get_config(self):
        return {"sparsity": self.sparsity}
