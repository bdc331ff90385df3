"""Stopping a phase whose loss or weights stop being finite, with a useful message."""

from __future__ import annotations

import math

import keras
import numpy as np

from tfadmm.admm_model import ADMM
from tfadmm.errors import TfadmmError


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops `fit` at the first batch whose loss or ADMM penalty is NaN or Inf.

    Attributes:
        problem: None, or `(batch number, log key)` of the first bad value.
    """

    problem = None

    def on_train_batch_end(self, batch, logs=None):
        for key in ("admm_penalty", "loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self.problem = (batch + 1, key)
                self.model.stop_training = True
                return


def non_finite_message(recipe, model, position, epoch, label, problem):
    """Names the setting that most likely made the loss NaN or Inf, and the way back.

    Args:
        recipe: the run's `Recipe`.
        model: the model being trained.
        position: `("baseline",)` or `(stage index, "admm" | "retrain")`.
        epoch: the 0-based epoch of the phase.
        label: the phase's progress label.
        problem: `StopOnNonFinite.problem`.
    """
    batch, key = problem
    if position[0] == "baseline":
        where, optimizer = "baseline", recipe.baseline.optimizer
    else:
        stage = recipe.stages[position[0]]
        where = f"stages.{stage.name}.{position[1]}"
        optimizer = getattr(stage, position[1]).optimizer
    lr = f"{where}.optimizer.learning_rate (now {optimizer.learning_rate:g})"
    if position[-1] == ADMM:
        rho = float(keras.ops.convert_to_numpy(model.rho))
        rho_key = f"{where}.rho (initial {model.rho0:g}, now {rho:g})"
        cause = (f"rho is likely too large: lower {rho_key}" if key == "admm_penalty"
                 else f"the learning rate or rho is likely too large: lower {lr} or {rho_key}")
    else:
        cause = f"the learning rate is likely too large: lower {lr}"
    return (f"{label} epoch {epoch + 1}, batch {batch}: the {key} became NaN or Inf, so the "
            f"stage stopped; {cause}. The last good checkpoint is kept: continue with "
            "--resume --allow-changes --set KEY=VALUE.")


def check_finite(model, label):
    """Raises if any trainable weight is NaN or Inf (after an epoch, before its checkpoint)."""
    for variable in model.trainable_variables:
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            raise TfadmmError(
                f"{label}: the weights became NaN or Inf (is the learning rate or rho too "
                "large?); the last good checkpoint is kept: lower them with --set and "
                "resume with --resume."
            )
