"""The ADMM training step for the TensorFlow backend.

Keras' own TensorFlow `train_step`, with the ADMM phases added: the penalty in
the forward pass, masked gradients, held weights restored after the update,
and the Z/U update every `update_interval` steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfadmm.backend.multi_worker import is_multi_worker, reducible_logs
from tfadmm.keras_private import (
    loss_tracker,
    scale_loss_for_distribution,
    unscale_loss_for_distribution,
)


def train_step(model: keras.Model, data):
    """One training step of `model`, an `tfadmm.ADMMModel` (which calls it)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    in_admm = model.phase_index_value == 0

    # Forward pass
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        loss_tracker(model).update_state(
            unscale_loss_for_distribution(loss),
            sample_weight=tf.shape(next(i for i in tf.nest.flatten(x) if i is not None))[0],
        )
        total = loss
        penalty = model.penalty() if in_admm else None
        if in_admm:
            total = total + scale_loss_for_distribution(penalty)
        total = model.optimizer.scale_loss(total)

    # Compute gradients
    variables = model.trainable_variables
    gradients = model.mask_gradients(tape.gradient(total, variables), variables)

    # Update weights
    model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
    _once_for_all_replicas(lambda: _hold_and_update(model, in_admm))

    logs = model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
    logs.update(model.admm_logs(penalty))
    if is_multi_worker(model.distribute_strategy):
        logs = reducible_logs(logs)
    return logs


def _hold_and_update(model, in_admm):
    model.apply_masks(held_only=True)

    # ADMM update
    if in_admm:
        step = model.admm_step.assign_add(1)
        tf.cond(
            tf.equal(step % model.update_interval, 0),
            lambda: _run(model.admm_update),
            lambda: tf.constant(True),
        )


def _once_for_all_replicas(fn):
    """Runs `fn` once per step, in cross-replica context, whatever the strategy.

    Under `tf.distribute` the step runs once per replica; the held weights, Z,
    U and rho are mirrored variables that must change once, identically on
    every replica. `merge_call` runs `fn` a single time with the (identical,
    all-reduced) weights of the primary replica, and its assignments are
    copied to every replica. It also lets the Z/U update stay inside a
    `tf.cond`, where a replica-context assignment of a mirrored variable
    (itself a `merge_call`) is not allowed.
    """
    if tf.distribute.in_cross_replica_context():
        return fn()
    return tf.distribute.get_replica_context().merge_call(lambda strategy: fn())


def _run(fn):
    fn()
    return tf.constant(True)

