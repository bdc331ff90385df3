"""The model-level operations: `wrap` a model for ADMM, `project` it (at once or
progressively), `strip` the result."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping

import keras
from keras import ops

from tfadmm import surgery
from tfadmm.admm_model import (
    DEFAULT_RHO,
    DEFAULT_RHO_MULTIPLIER,
    DEFAULT_UPDATES_PER_EPOCH,
    RETRAIN,
    ADMMModel,
)
from tfadmm.compressible import find_compressible_layers
from tfadmm.constraints import Constraint
from tfadmm.distillation import Distill, frozen_copy
from tfadmm.kernel_state import KernelState
from tfadmm.mapping import DEFAULT_FRACTION, check_fraction
from tfadmm.targets import match_layers, resolve_targets


def _check_number(name, value, *, minimum, inclusive=False, allow_none=False):
    if value is None and allow_none:
        return
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (value >= minimum if inclusive else value > minimum)
    )
    if not ok:
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        raise ValueError(
            f"Invalid `{name}`: expected a number {bound}. Received: {name}={value!r}"
        )


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def wrap(
    model: keras.Model,
    targets: Mapping[str, Constraint | dict | str],
    *,
    rho: float = DEFAULT_RHO,
    rho_multiplier: float = DEFAULT_RHO_MULTIPLIER,
    rho_max: float | None = None,
    update_every_steps: int | None = None,
    updates_per_epoch: int = DEFAULT_UPDATES_PER_EPOCH,
    freeze: Iterable[str] | None = None,
    distill: Distill | None = None,
) -> ADMMModel:
    """Wraps a built Keras model for ADMM compression of the targeted kernels.

    Each targeted kernel starts its ADMM stage with `Z = project(W)`, `U = 0`
    and rho at `rho`. Weights that are exactly zero stay zero (a model pruned
    by an earlier stage is only pruned further among its survivors). When
    `model` is itself an `ADMMModel` after `project`, the kernels it
    compressed and that `targets` do not name again stay exactly as they are.

    Args:
        model: a built `keras.Model` (Sequential, functional or subclassed), or
            an `ADMMModel` whose stage is finished.
        targets: `{layer-name pattern: constraint}`, e.g.
            `{"conv1": tfadmm.Sparsity(0.8), "fc*": tfadmm.Sparsity(0.99)}`.
        rho: initial ADMM penalty weight.
        rho_multiplier: rho grows by this factor at every Z/U update (>= 1).
        rho_max: optional cap for rho.
        update_every_steps: training steps between Z/U updates; None: spread
            `updates_per_epoch` of them over each epoch of `fit`.
        updates_per_epoch: Z/U updates per epoch when `update_every_steps` is
            None (4 by default, each growing rho by `rho_multiplier`).
        freeze: optional layer-name patterns whose kernels are held exactly at
            their current values (e.g. layers quantized by an earlier stage).
        distill: optional `tfadmm.Distill`: knowledge distillation from its
            `teacher`, by default a frozen copy of `model` as it is now.

    Returns:
        An `ADMMModel`; compile and fit it like the original.

    Raises:
        ValueError: an unbuilt model, a pattern that matches no compressible
            layer, a layer without a kernel, or an argument out of range.
    """
    _check_number("rho", rho, minimum=0)
    _check_number("rho_multiplier", rho_multiplier, minimum=1, inclusive=True)
    _check_number("rho_max", rho_max, minimum=rho, inclusive=True, allow_none=True)
    if update_every_steps is not None and not _positive_int(update_every_steps):
        raise ValueError(
            "Invalid `update_every_steps`: expected a positive integer or None "
            "(`updates_per_epoch` updates an epoch). "
            f"Received: update_every_steps={update_every_steps!r}"
        )
    if not _positive_int(updates_per_epoch):
        raise ValueError(
            "Invalid `updates_per_epoch`: expected a positive integer. "
            f"Received: updates_per_epoch={updates_per_epoch!r}"
        )

    previous = []
    if isinstance(model, ADMMModel):
        if model.phase != RETRAIN:
            raise ValueError(
                "The model is still in its ADMM phase: call tfadmm.project(model) "
                "to finish that stage before wrapping it for the next one."
            )
        if not fully_mapped(model):
            raise ValueError(
                "The model's progressive mapping is unfinished: call "
                "tfadmm.project(model) to map the remaining weights before wrapping "
                "it for the next stage."
            )
        previous = model.pairs()
        model = model.model
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built: call it on a batch or call "
            "model.build(input_shape) before tfadmm.wrap()."
        )

    resolved = resolve_targets(model, targets)
    frozen_layers = set(match_layers(model, freeze or ()))
    if freeze and not frozen_layers:
        raise ValueError(
            f"`freeze` matches no compressible layer. Received: freeze={list(freeze)!r}"
        )

    kernels, variables = [], []
    for (layer_name, kernel_name), (constraint, variable) in resolved.items():
        kernels.append(KernelState(layer_name, kernel_name, constraint, variable.shape))
        variables.append(variable)
    layers = find_compressible_layers(model)
    held = [(s.layer_name, s.kernel_name) for s, _ in previous]
    held += [(name, k) for name in frozen_layers for k in layers[name]]
    for layer_name, kernel_name in dict.fromkeys(held):
        if (layer_name, kernel_name) in resolved:
            continue
        variable = layers[layer_name][kernel_name]
        kernels.append(
            KernelState(layer_name, kernel_name, None, variable.shape, active=False)
        )
        variables.append(variable)

    teacher = None
    if distill is not None:
        if not isinstance(distill, Distill):
            raise ValueError(
                f"Invalid `distill`: expected a tfadmm.Distill or None. Received: {distill!r}"
            )
        teacher = distill.teacher if distill.teacher is not None else frozen_copy(model)
    admm_model = ADMMModel(
        model,
        kernels,
        distill=distill,
        teacher=teacher,
        rho=rho,
        rho_multiplier=rho_multiplier,
        rho_max=rho_max,
        update_every_steps=update_every_steps,
        updates_per_epoch=updates_per_epoch,
    )
    previous_masks = {(s.layer_name, s.kernel_name): s for s, _ in previous}
    for state, variable in admm_model.pairs():
        w = ops.cast(variable, "float32")
        if state.active:
            state.start(w)
        else:
            old = previous_masks.get((state.layer_name, state.kernel_name))
            state.freeze(w)
            if old is not None:
                # A pruned kernel keeps training its survivors; a quantized one stays put.
                state.mask.assign(old.mask)
    return admm_model


def project(model: ADMMModel, fraction: float | None = None) -> ADMMModel:
    """Hard-maps every active kernel into its set and starts masked retraining.

    `W <- project(W)` (pruning keeps the top-k of W itself); the masks are then
    fixed: pruned weights stay exactly zero and quantized weights stay on their
    levels through any further `fit`, whatever the optimizer does. The ADMM
    penalty is off from here on.

    With `fraction`, quantized kernels map progressively: each call snaps and
    freezes the next `fraction` of their weights (of those there were to map),
    the ones closest to their levels, with the scale fitted at the first call;
    the others keep training. Call it again after retraining until
    `tfadmm.fully_mapped(model)`, or use `tfadmm.map_progressively`. Pruning
    maps fully at the first call; a call without `fraction` maps all the rest.

    Args:
        model: an `ADMMModel` from `tfadmm.wrap`.
        fraction: None, or the share of quantized weights to map, in (0, 1].

    Returns:
        The same model, for chaining.
    """
    _check_admm_model(model, "project")
    check_fraction(fraction)
    for state, variable in model.pairs(active_only=True):
        values = state.hard_map(ops.cast(variable, "float32"), fraction)
        variable.assign(ops.cast(values, variable.dtype))
    model.start_retraining()
    return model


def strip(model: ADMMModel, shrink: bool = False) -> keras.Model:
    """Returns the wrapped plain Keras model, with its compressed weights.

    The result holds no tfadmm class: `keras.models.load_model` reads it
    without tfadmm installed. A model still in its ADMM phase is projected
    first (and the rest of a progressive mapping is mapped), so the returned
    weights are always inside their sets. The returned
    model shares its variables with the wrapper.

    Args:
        model: an `ADMMModel` from `tfadmm.wrap`.
        shrink: also remove the filters and channels that pruning made
            unnecessary (`FilterSparsity`, `ChannelSparsity`): returns a new,
            smaller model with the same outputs (`tfadmm.surgery.shrink`).

    Returns:
        The original `keras.Model`, or its shrunk copy.
    """
    _check_admm_model(model, "strip")
    if not fully_mapped(model):
        project(model)
    model.apply_masks()
    if shrink:
        return surgery.shrink(model.model)
    return model.model


def unmapped_weights(model: ADMMModel) -> int:
    """How many weights of `model`'s quantized kernels still wait to be mapped.

    Args:
        model: an `ADMMModel`.

    Returns:
        An int: 0 once `tfadmm.project` has mapped every weight; in the ADMM
        phase, every supported weight of the kernels whose constraint freezes
        values.
    """
    return sum(
        int(ops.convert_to_numpy(ops.sum(state.mask)))
        for state, _ in model.pairs(active_only=True)
        if state.constraint.freezes_values
    )


def fully_mapped(model: ADMMModel) -> bool:
    """Whether `tfadmm.project` has mapped every weight of `model` into its set."""
    return model.phase == RETRAIN and unmapped_weights(model) == 0


def map_progressively(
    model: ADMMModel, retrain: Callable[[ADMMModel], object], fraction: float = DEFAULT_FRACTION
) -> ADMMModel:
    """Maps quantized weights a share at a time, retraining after each step.

    Repeats `tfadmm.project(model, fraction=fraction)` then `retrain(model)`
    until every weight is mapped: the `fraction` (of the weights there were to
    map) closest to their levels are snapped and frozen, the others retrain.
    Pruning constraints map fully at the first step; so does a quantization
    with `fraction=1`.

    Args:
        model: an `ADMMModel` after its ADMM phase.
        retrain: called with the model after each step, e.g.
            `lambda m: m.fit(x, y, epochs=1)`.
        fraction: the share mapped per step, in (0, 1].

    Returns:
        The model, fully mapped and retrained.

    Example:
        >>> tfadmm.map_progressively(admm_model, lambda m: m.fit(ds, epochs=1))
    """
    check_fraction(fraction)
    while True:
        project(model, fraction=fraction)
        retrain(model)
        if fully_mapped(model):
            return model


def _check_admm_model(model, verb):
    if not isinstance(model, ADMMModel):
        raise ValueError(
            f"tfadmm.{verb}() expects a model returned by tfadmm.wrap(). "
            f"Received: {type(model).__name__}"
        )
