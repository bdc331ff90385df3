"""The constraint protocol: a set S with a cheap Euclidean projection.

A constraint is a small, stateless, serializable object. ADMM only needs its
projection `project(x, support)`, which solves

    argmin_y ||x - y||^2  subject to  y in S  and  y = 0 outside `support`,

and says which entries of the result are allowed to be non-zero (its support).
Pruning constraints shrink the support; quantization constraints keep it and
put the values on a level set. `a & b` chains two constraints: `b` is applied to
what `a` kept (prune, then quantize the survivors), as in the papers. `get`
turns an identifier (an instance, a serialized config, a name) into a constraint.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import ops


class Projection(NamedTuple):
    """The result of a projection.

    Attributes:
        values: the projected tensor, `x`'s shape and dtype.
        support: a 0/1 tensor of `x`'s shape: 1 where `values` may be non-zero.
    """

    values: object
    support: object


class Constraint:
    """Base class of the constraint sets that tfadmm compresses weights into.

    Subclasses implement `project` and `get_config`; a subclass whose weights
    must stay exactly where the projection put them (quantization levels) sets
    `freezes_values = True`, and those whose projection needs a particular
    kernel shape override `check_shape`.
    """

    #: Whether hard mapping freezes every projected value (quantization), or
    #: only the entries outside the support (pruning).
    freezes_values = False

    def project(self, x, support=None):
        """Projects `x` onto the set.

        Args:
            x: a float tensor.
            support: optional 0/1 tensor of `x`'s shape; entries where it is 0
                are forced to 0 (weights pruned by an earlier stage).

        Returns:
            A `Projection(values, support)`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `project`.")

    def __call__(self, x, support=None):
        """Returns the projected values only, like a `keras.constraints.Constraint`."""
        return self.project(x, support).values

    def retrain_mask(self, projection):
        """The 0/1 mask of weights that keep training after hard mapping."""
        if self.freezes_values:
            return ops.zeros_like(projection.support)
        return projection.support

    def check_shape(self, shape):
        """Raises `ValueError` if the constraint cannot apply to a kernel of `shape`."""

    def diagnostics(self, w, support):
        """Per-step values worth logging for a kernel `w` under ADMM.

        Returns:
            A dict of names to scalar tensors, logged as `<layer>_<name>`
            (e.g. the distance to a quantization level set). Empty by default.
        """
        return {}

    def __and__(self, other):
        if not isinstance(other, Constraint):
            return NotImplemented
        return Chain(self, other)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _class_for(name):
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    for candidate in (name, camel):
        cls = keras.saving.get_registered_object(f"tfadmm>{candidate}")
        if isinstance(cls, type) and issubclass(cls, Constraint):
            return cls
    return None


def get(identifier):
    """Returns a `Constraint` from an instance, a serialized config or a name.

    Args:
        identifier: a `Constraint`; a dict as written by
            `keras.saving.serialize_keras_object`; or the name of a constraint
            class that needs no arguments (`"binary"`, `"Ternary"`).

    Raises:
        ValueError: for anything else, naming the received value.
    """
    if isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, dict):
        obj = keras.saving.deserialize_keras_object(identifier)
        if isinstance(obj, Constraint):
            return obj
    if isinstance(identifier, str):
        cls = _class_for(identifier)
        if cls is not None:
            try:
                return cls()
            except TypeError:  # the class needs arguments (`Sparsity`, `Quantize`)
                pass
    raise ValueError(
        "Could not interpret a tfadmm constraint: expected a tfadmm.Constraint "
        "(e.g. tfadmm.Sparsity(0.9)), its serialized config, or the name of one "
        f"that takes no arguments. Received: {identifier!r}"
    )


def full_support(x, support):
    """Returns `support`, or a tensor of ones shaped like `x` when it is None."""
    if support is None:
        return ops.ones_like(x)
    return ops.cast(support, x.dtype)


@keras.saving.register_keras_serializable(package="tfadmm")
class Chain(Constraint):
    """Two constraints applied in order: `second` projects what `first` kept.

    `Sparsity(0.9) & Quantize(4)` keeps the 10 % largest weights, then puts the
    survivors on 4-bit levels; zero stays reserved for the pruned weights.

    Args:
        first: the constraint applied first (usually a sparsity constraint).
        second: the constraint applied to the survivors.
    """

    def __init__(self, first, second):
        self.first = get(first)
        self.second = get(second)

    @property
    def freezes_values(self):
        return self.first.freezes_values or self.second.freezes_values

    def project(self, x, support=None):
        kept = self.first.project(x, support)
        return self.second.project(kept.values, kept.support)

    def check_shape(self, shape):
        self.first.check_shape(shape)
        self.second.check_shape(shape)

    def diagnostics(self, w, support):
        kept = self.first.project(w, support)
        return {**self.first.diagnostics(w, support), **self.second.diagnostics(w, kept.support)}

    def get_config(self):
        return {
            "first": keras.saving.serialize_keras_object(self.first),
            "second": keras.saving.serialize_keras_object(self.second),
        }

    def __repr__(self):
        return f"{self.first!r} & {self.second!r}"
