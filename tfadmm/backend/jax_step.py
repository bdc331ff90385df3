"""The ADMM training step for the JAX backend.

Keras' own JAX `train_step`, with the same ADMM phases as the TensorFlow step:
the penalty in the forward pass, masked gradients, held weights restored after
the update, and the Z/U update every `update_interval` steps.

Keras' JAX trainer is stateless: every variable's value comes into the step in
the `state` tuples and leaves it in new ones. The ADMM math is not rewritten
for that: the step runs the model's own methods (`penalty`, `mask_gradients`,
`apply_masks`, `admm_update`, `admm_logs`) inside `keras.StatelessScope`s that
map the model's variables to their values in `state`. There, reading a variable
reads its value in `state`, and an assignment is collected by the scope (and
put in the new state) instead of being written to the variable.
"""

from __future__ import annotations

import jax
import keras

from tfadmm.keras_private import update_metrics_variables


def train_step(model: keras.Model, state, data):
    """One training step of `model`, an `tfadmm.ADMMModel` (which calls it).

    Args:
        model: the `ADMMModel`.
        state: `(trainable, non_trainable, optimizer, metrics)` variable values,
            in the order of the model's (and its optimizer's) variable lists.
        data: one batch, `x`, `(x, y)` or `(x, y, sample_weight)`.

    Returns:
        `(logs, state)`: the step's logs and the new variable values.
    """
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    in_admm = model.phase_index_value == 0

    # Forward pass
    def loss_fn(trainable, non_trainable):
        loss, aux = model.compute_loss_and_updates(
            trainable, non_trainable, metrics_variables, x, y, sample_weight,
            training=True, optimizer_variables=optimizer_variables,
        )
        penalty = None
        if in_admm:
            with _values_of(model, trainable, non_trainable):
                penalty = model.penalty()
            # `loss` is already scaled for the optimizer; the penalty is scaled alike.
            with keras.StatelessScope(
                state_mapping=list(zip(model.optimizer.variables, optimizer_variables,
                                       strict=True))
            ):
                loss = loss + model.optimizer.scale_loss(penalty)
        return loss, (aux, penalty)

    (_, (aux, penalty)), gradients = jax.value_and_grad(loss_fn, has_aux=True)(
        trainable, non_trainable
    )
    unscaled_loss, y_pred, non_trainable, metrics_variables = aux

    # Compute gradients
    with _values_of(model, trainable, non_trainable):
        gradients = model.mask_gradients(gradients, model.trainable_variables)

    # Update weights
    trainable, optimizer_variables = model.optimizer.stateless_apply(
        optimizer_variables, gradients, trainable
    )
    with _values_of(model, trainable, non_trainable) as scope:
        model.apply_masks(held_only=True)

        # ADMM update
        if in_admm:
            step = model.admm_step.assign_add(1)
            _assign_all(model.non_trainable_variables, jax.lax.cond(
                step % model.update_interval == 0,
                lambda: _run_stateless(model.admm_update, model),
                lambda: _current_values(model.non_trainable_variables),
            ))
    trainable = _current_values(model.trainable_variables, scope)
    non_trainable = _current_values(model.non_trainable_variables, scope)

    logs, metrics_variables = update_metrics_variables(
        model, metrics_variables, unscaled_loss, x, y, y_pred, sample_weight
    )
    with _values_of(model, trainable, non_trainable):
        logs.update(model.admm_logs(penalty))
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def unshare_buffers(variables):
    """Gives every variable a buffer of its own (before `fit`, `evaluate`, `predict`).

    Keras' JAX trainer donates the variables' buffers to its steps, which fails
    when two variables hold the same array: as after `tfadmm.project`, which assigns
    one projected value to a kernel and to its held values Z.
    """
    seen = set()
    for variable in variables:
        value = variable.value
        if id(value) in seen:
            variable.assign(keras.ops.copy(value))
        seen.add(id(variable.value))


def _values_of(model, trainable, non_trainable):
    """A scope in which the model's variables read as `trainable` and `non_trainable`."""
    return keras.StatelessScope(state_mapping=list(zip(
        [*model.trainable_variables, *model.non_trainable_variables],
        [*trainable, *non_trainable],
        strict=True,
    )))


def _current_values(variables, scope=None):
    """The variables' values in `scope` (by default, the scope around the caller)."""
    if scope is None:
        return tuple(v.value for v in variables)
    return tuple(scope.get_current_value(v) for v in variables)


def _assign_all(variables, values):
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _run_stateless(fn, model):
    """Runs `fn` on the current values; returns the model's non-trainable values after it.

    A branch of `jax.lax.cond` must return what it changes instead of assigning it,
    so `fn` runs in a scope of its own. `fn` may only assign non-trainable variables
    (the ADMM state and rho): an assignment to any other variable is an error here,
    when the step is traced, rather than an update silently lost.
    """
    variables = [*model.trainable_variables, *model.non_trainable_variables]
    with keras.StatelessScope(
        state_mapping=[(v, v.value) for v in variables]
    ) as scope:
        before = {id(v): scope.get_current_value(v) for v in model.trainable_variables}
        fn()
    changed = [v.path for v in model.trainable_variables
               if scope.get_current_value(v) is not before[id(v)]]
    if changed:
        raise RuntimeError(
            "The ADMM update may only change non-trainable variables (Z, U, rho). "
            f"Received assignments to: {', '.join(changed)}"
        )
    return _current_values(model.non_trainable_variables, scope)
