"""Warnings about ADMM phases whose penalty will outgrow the optimizer's stable step."""

from __future__ import annotations

import math

import keras

from tfadmm.data.specs import get_spec
from tfadmm.recipes.reader import Reader, format_path
from tfadmm.stage import phase_interval, phase_multiplier, phase_updates


def sgd_limit(momentum):
    """The largest `learning rate x curvature` SGD with heavy-ball `momentum` can take.

    Gradient descent with momentum `b` on a quadratic of curvature `L`
    converges only when `lr * L < 2 * (1 + b)`. The ADMM penalty
    `rho / 2 ||W - Z + U||^2` alone has curvature `rho`.
    """
    return 2.0 * (1.0 + (momentum or 0.0))


def steps_per_epoch(recipe):
    """Training batches per epoch from the dataset's known size; None if unknown."""
    data = recipe.data
    examples = get_spec(data.name).train_examples
    if data.take is not None:
        examples = data.take
    elif examples is not None:
        examples = int(examples * (1.0 - data.validation_split))
    return None if examples is None else max(1, math.ceil(examples / data.batch_size))


def _learning_rate(optimizer, step):
    # The optimizer's config holds its rate, a number or a serialized schedule.
    rate = optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):
        schedule = keras.optimizers.schedules.deserialize(rate)
        return float(keras.ops.convert_to_numpy(schedule(step)))
    return float(rate)


def stability_warnings(recipe, steps=None):
    """One line per ADMM phase in which `learning rate x rho` passes SGD's limit.

    rho grows at every Z/U update (by `rho_multiplier`, or so as to reach the phase's
    `rho_final`, 1.0 by default, at its end; never beyond `rho_max`); with
    SGD, once `learning rate x rho` exceeds `sgd_limit(momentum)` the penalty's
    step overshoots and the loss diverges to NaN. Adaptive optimizers (Adam,
    AdamW, RMSprop) scale their steps and are not checked.

    Args:
        recipe: a `Recipe`.
        steps: training steps per epoch; estimated from the dataset's size
            when None (phases with `update_every_steps` are skipped when it
            cannot be).

    Returns:
        A list of warnings, each with the file, line and stage.
    """
    steps = steps or steps_per_epoch(recipe)
    reader = Reader(recipe.source, recipe.lines)
    warnings = []
    for index, stage in enumerate(recipe.stages):
        spec = stage.admm
        if spec.optimizer.name != "sgd" or spec.epochs == 0:
            continue
        per_epoch = spec.update_every_steps is None
        if not per_epoch and steps is None:
            continue
        phase_steps = steps or 1
        interval = phase_interval(spec, phase_steps)
        updates = phase_updates(spec, phase_steps)
        multiplier = phase_multiplier(spec, phase_steps)
        optimizer = spec.optimizer.build(spec.epochs, phase_steps)
        limit = sgd_limit(spec.optimizer.momentum)
        rho = spec.rho
        for update in range(1, updates + 1):
            rho = rho * multiplier
            if spec.rho_max is not None:
                rho = min(rho, spec.rho_max)
            rate = _learning_rate(optimizer, update * interval)
            if rate * rho > limit:
                path = ("stages", index, "admm")
                warnings.append(
                    f"{reader.where(path)}: {format_path(path)}: learning rate x rho reaches "
                    f"{rate * rho:.3g} at Z/U update {update} of {updates} (rho {rho:.3g}), "
                    f"beyond SGD's stable {limit:.3g} = 2 x (1 + momentum): expect a NaN loss; "
                    "make fewer Z/U updates (updates_per_epoch, update_every_steps), lower "
                    f"{'rho_final' if spec.rho_multiplier is None else 'rho_multiplier'}, or set "
                    f"rho_max <= {limit / rate:.3g}"
                )
                break
    return warnings
