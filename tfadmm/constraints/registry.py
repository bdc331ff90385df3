"""`get(identifier)`: a constraint from an object, a config dict or a name."""

from __future__ import annotations

import keras

from tfadmm.constraints.base import Constraint


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
