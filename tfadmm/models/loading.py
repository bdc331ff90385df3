"""`tfadmm.models.load`: a model from a `.keras` file or a `package.module:function` reference."""

from __future__ import annotations

import importlib
import os
import zipfile

import keras

from tfadmm.errors import ModelError


def load_file(path, *, safe_mode=True, compile=True):
    """Loads a `.keras` file; every failure is one `ModelError` line.

    The one loader of tfadmm: recipes' `model.file`, checkpoints, and the
    files `tfadmm report / export / evaluate` read all come through here.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(
            f"Model file not found: expected an existing .keras file. Received: {path}"
        )
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"Cannot load model file {path}: not a .keras archive (a zip file); it is corrupt, "
            "truncated or another format."
        )
    try:
        model = keras.models.load_model(path, safe_mode=safe_mode, compile=compile)
    except Exception as error:  # corrupt zip, unknown class, lambda in safe mode, ...
        hint = ""
        if safe_mode and "safe_mode" in str(error):
            hint = (" Refused in safe mode: the file holds Python code (e.g. a Lambda layer); "
                    "only for a file you trust, set `model.safe_mode: false` in the recipe "
                    "(`tfadmm evaluate --unsafe`). Keras said: ")
        message = " ".join(str(error).split())
        raise ModelError(
            f"Cannot load model file {path}:{hint or ' '}{type(error).__name__}: {message}"
        ) from error
    return model


def _load_function(spec):
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ModelError(
            "Invalid model reference: expected 'package.module:function'. "
            f"Received: {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelError(
            f"Cannot import module '{module_name}' of model reference {spec!r}: {error}"
        ) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelError(
            f"Model reference {spec!r}: module '{module_name}' has no function "
            f"'{function_name}'."
        )
    model = function()
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"Model reference {spec!r} must return a keras.Model. "
            f"Received: {type(model).__name__}"
        )
    return model


def load(spec, *, safe_mode=True):
    """Loads a user's model.

    Args:
        spec: a path to a `.keras` file, or `"package.module:function"`: the
            function is imported and called without arguments and must return
            a `keras.Model`.
        safe_mode: passed to `keras.models.load_model` (False allows lambda
            layers from trusted files).

    Returns:
        The `keras.Model`.

    Raises:
        ModelError: a missing or unreadable file, a bad reference, or a
            function that does not return a `keras.Model`.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec:
        raise ModelError(
            "Invalid model spec: expected a .keras path or 'package.module:function'. "
            f"Received: {spec!r}"
        )
    if spec.endswith(".keras"):
        return load_file(spec, safe_mode=safe_mode)
    if ":" in spec and not os.path.exists(spec):
        return _load_function(spec)
    raise ModelError(
        "Invalid model spec: expected a path ending in .keras or 'package.module:function'. "
        f"Received: {spec!r}"
    )
