"""Errors tfadmm raises for bad input; the CLI turns them into one-line messages."""


class TfadmmError(ValueError):
    """Base class: bad input that the user can fix (a recipe, a file, data, a flag)."""


class UsageError(TfadmmError):
    """A command used the wrong way (flags, an existing run directory): like a recipe error."""


class RecipeError(TfadmmError):
    """A recipe file that does not validate; the message lists every problem."""


class DataError(TfadmmError):
    """A dataset that cannot be found, read or fed to the model."""


class ModelError(TfadmmError):
    """A model file or reference that cannot be loaded or used."""


class MissingDependencyError(TfadmmError, ImportError):
    """A part of tfadmm used without the package it needs (TensorFlow under Keras' JAX backend)."""
