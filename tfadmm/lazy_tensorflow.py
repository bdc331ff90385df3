"""TensorFlow, imported at first use: tfadmm's core also runs without it (Keras' JAX backend).

The parts of tfadmm built on TensorFlow itself (tf.data loaders, SavedModel and TFLite
export, `tf.distribute`, TensorBoard summaries, the recipe runner) name it through
`tf = needs_tensorflow("what this module does")`. Importing them does not import
TensorFlow, so `import tfadmm` works where it is not installed; their first use of `tf`
imports it, or raises `MissingDependencyError` naming the part that needs it.
"""

from __future__ import annotations

import sys

import keras

from tfadmm.errors import MissingDependencyError

#: `tf.data.INFINITE_CARDINALITY`, without importing TensorFlow.
INFINITE_CARDINALITY = -1


class _LazyTensorFlow:
    """Stands for the `tensorflow` module; imports it at the first attribute read."""

    __slots__ = ("_feature",)

    def __init__(self, feature):
        self._feature = feature

    def __getattr__(self, name):
        return getattr(load(self._feature), name)

    def __repr__(self):
        return f"<tensorflow, imported at first use by {self._feature}>"


def needs_tensorflow(feature: str) -> _LazyTensorFlow:
    """A stand-in for `import tensorflow as tf` that imports TensorFlow at first use.

    Args:
        feature: what needs TensorFlow, for the error raised without it
            (e.g. `"tfadmm.export (SavedModel and TFLite)"`).
    """
    return _LazyTensorFlow(feature)


def load(feature: str):
    """The `tensorflow` module.

    Raises:
        MissingDependencyError: TensorFlow cannot be imported.
    """
    try:
        import tensorflow
    except ImportError as error:
        raise missing(feature, error) from error
    return tensorflow


def missing(feature: str, reason) -> MissingDependencyError:
    """The error for `feature` used where TensorFlow cannot be imported for `reason`."""
    return MissingDependencyError(
        f"{feature} needs TensorFlow. Expected an importable `tensorflow` package "
        "(pip install tensorflow); the rest of tfadmm (wrap, fit, project, strip, "
        "`.keras` files, recipes on IDX or .npz data) runs without it. Received: "
        f"{reason} (Keras backend: {keras.backend.backend()})"
    )


def available() -> bool:
    """Whether TensorFlow can be imported (imports it when it can).

    The parts of tfadmm with a path of their own without TensorFlow (`tfadmm.data.load`
    from arrays, IDX or `.npz` files; TensorBoard logging) take the TensorFlow path
    whenever this is true, so that nothing changes where TensorFlow is installed.
    """
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def is_loaded() -> bool:
    """Whether something has imported TensorFlow already (no import here).

    An object can only be a TensorFlow one (a `tf.data.Dataset`, a strategy) if
    TensorFlow is loaded: checks for those ask this first.
    """
    return sys.modules.get("tensorflow") is not None


def is_dataset(value) -> bool:
    """Whether `value` is a `tf.data.Dataset` (without importing TensorFlow)."""
    return is_loaded() and isinstance(value, sys.modules["tensorflow"].data.Dataset)
