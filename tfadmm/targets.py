"""Resolving layer-name patterns to the kernels they compress."""

from __future__ import annotations

import fnmatch

import keras

from tfadmm.compressible import EXPECTED, find_compressible_layers, named_layers
from tfadmm.constraints import get as get_constraint


def _is_pattern(name):
    return any(c in name for c in "*?[")


def resolve_targets(model, targets):
    """Maps `{pattern: constraint}` onto the model's compressible kernels.

    An exact layer name wins over patterns; otherwise the first matching
    pattern, in the order given, decides a layer's constraint.

    Args:
        model: a built Keras model.
        targets: dict of layer-name glob patterns (`"conv1"`, `"fc*"`) to
            constraints (or anything `tfadmm.constraints.get` accepts).

    Returns:
        `{(layer_name, kernel_name): (constraint, variable)}` in model order.

    Raises:
        ValueError: a pattern that matches no compressible layer, a layer
            without a compressible kernel, an invalid constraint, or a kernel
            shape the constraint cannot apply to; the message names the pattern
            and lists the compressible layers.
    """
    if not isinstance(targets, dict) or not targets:
        raise ValueError(
            "`targets` must be a non-empty dict of layer-name patterns to "
            f"constraints, e.g. {{'fc*': tfadmm.Sparsity(0.9)}}. Received: {targets!r}"
        )
    layers = find_compressible_layers(model)
    available = ", ".join(layers) or "(none)"
    all_layers = dict(named_layers(model))
    constraints = {}
    for pattern, value in targets.items():
        if not isinstance(pattern, str):
            raise ValueError(
                f"Target keys must be layer-name patterns (str). Received: {pattern!r}"
            )
        try:
            constraints[pattern] = get_constraint(value)
        except ValueError as error:
            raise ValueError(f"targets[{pattern!r}]: {error}") from None
        if _is_pattern(pattern):
            if not any(fnmatch.fnmatchcase(name, pattern) for name in layers):
                others = [f"'{name}' ({type(layer).__name__})"
                          for name, layer in all_layers.items()
                          if fnmatch.fnmatchcase(name, pattern)
                          and not isinstance(layer, keras.layers.InputLayer)]
                only = ""
                if others:
                    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
                    only = (f", only layers without one: {', '.join(others[:5])}{more}; "
                            f"expected {EXPECTED}")
                raise ValueError(
                    f"targets[{pattern!r}]: the pattern matches no compressible layer{only}. "
                    f"Compressible layers: {available}"
                )
        elif pattern not in layers:
            if pattern in all_layers:
                kind = type(all_layers[pattern]).__name__
                raise ValueError(
                    f"targets[{pattern!r}]: layer '{pattern}' ({kind}) has no "
                    f"compressible kernel: expected {EXPECTED}. Compressible layers: {available}"
                )
            raise ValueError(
                f"targets[{pattern!r}]: the model has no layer named '{pattern}'. "
                f"Compressible layers: {available}"
            )

    resolved = {}
    for layer_name, kernels in layers.items():
        pattern = winning_pattern(layer_name, constraints)
        if pattern is None:
            continue
        constraint = constraints[pattern]
        for kernel_name, variable in kernels.items():
            try:
                constraint.check_shape(tuple(variable.shape))
            except ValueError as error:
                raise ValueError(
                    f"targets[{pattern!r}]: cannot apply {constraint!r} to "
                    f"{layer_name}.{kernel_name}: {error}"
                ) from None
            resolved[(layer_name, kernel_name)] = (constraint, variable)
    return resolved


def winning_pattern(layer_name, patterns):
    """The pattern that decides a layer: its exact name, else the first that matches."""
    if layer_name in patterns:
        return layer_name
    return next((p for p in patterns if fnmatch.fnmatchcase(layer_name, p)), None)


def match_layers(model, patterns):
    """The names of compressible layers that any of `patterns` matches."""
    layers = find_compressible_layers(model)
    return [name for name in layers if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
