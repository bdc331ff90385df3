"""N:M structured sparsity: n non-zeros in every group of m consecutive weights."""

from __future__ import annotations

import keras
from keras import ops

from tfadmm.constraints.base import Constraint, Projection, full_support


def project_n_m(x, n, m, axis=-2, support=None):
    """Projects `x` onto N:M sparse tensors along `axis`.

    Solves `argmin_y ||x - y||^2` subject to: every group of `m` consecutive
    entries along `axis` has at most `n` non-zeros, and `y = 0` outside
    `support`. Each group keeps its `n` largest magnitudes; ties go to the
    lower index.

    Args:
        x: a float tensor whose size along `axis` is a multiple of `m`.
        n: non-zeros kept per group.
        m: group length.
        axis: the axis the groups run along (-2: a Dense or Conv kernel's
            input channels, the axis sparse tensor cores reduce over).
        support: optional 0/1 tensor; entries where it is 0 stay 0.

    Returns:
        A `Projection(values, support)`.

    Example:
        >>> project_n_m(np.array([[1.], [-3.], [2.], [0.5]]), 2, 4).values
        # [[0.], [-3.], [2.], [0.]]
    """
    support = full_support(x, support)
    scores = ops.where(support > 0, ops.abs(x), -ops.ones_like(x))
    moved = ops.moveaxis(scores, axis, -1)
    moved_shape = moved.shape
    groups = ops.reshape(moved, (-1, m))
    _, indices = ops.top_k(groups, n, sorted=True)
    mask = ops.sum(ops.one_hot(indices, m, dtype=x.dtype), axis=-2)
    mask = ops.moveaxis(ops.reshape(mask, moved_shape), -1, axis) * support
    return Projection(x * mask, mask)


@keras.saving.register_keras_serializable(package="tfadmm")
class NMSparsity(Constraint):
    """N:M structured sparsity (2:4 runs on sparse tensor cores).

    Args:
        n: non-zeros kept in each group, 1 <= n < m.
        m: the group length along `axis`.
        axis: the kernel axis the groups run along; -2 is the input axis of
            Dense (in, out) and Conv (..., in, out) kernels.
    """

    def __init__(self, n=2, m=4, axis=-2):
        for name, value in (("n", n), ("m", m), ("axis", axis)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"Invalid `{name}`: expected an integer. Received: {name}={value!r}"
                )
        if not 1 <= n < m:
            raise ValueError(
                "Invalid N:M sparsity: expected integers with 1 <= n < m. "
                f"Received: n={n}, m={m}"
            )
        self.n = n
        self.m = m
        self.axis = axis

    @property
    def sparsity(self):
        return 1.0 - self.n / self.m

    def project(self, x, support=None):
        return project_n_m(x, self.n, self.m, self.axis, support)

    def check_shape(self, shape):
        if not -len(shape) <= self.axis < len(shape):
            raise ValueError(
                f"N:M sparsity along axis {self.axis} needs a kernel with at least "
                f"{abs(self.axis) if self.axis < 0 else self.axis + 1} dimensions. "
                f"Received: shape={tuple(shape)}"
            )
        if shape[self.axis] % self.m:
            raise ValueError(
                f"N:M sparsity needs the size of axis {self.axis} to be a multiple "
                f"of m={self.m}. Received: shape={tuple(shape)}"
            )

    def get_config(self):
        return {"n": self.n, "m": self.m, "axis": self.axis}
