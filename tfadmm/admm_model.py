"""`ADMMModel`: a user's Keras model plus the ADMM state of its compressed kernels."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tfadmm import admm, lazy_tensorflow
from tfadmm.backend.multi_worker import first_local_batch, is_multi_worker, reducible_logs
from tfadmm.compressible import find_compressible_layers
from tfadmm.distillation import soft_target_loss
from tfadmm.keras_private import MAYBE_SYMBOLIC_BUILD
from tfadmm.kernel_state import KernelState

# Keras' backend is fixed when Keras is imported: the training step of that backend only
# (each imports its own framework, which the other backends do not need).
if keras.backend.backend() == "tensorflow":
    from tfadmm.backend import tensorflow_step as _backend_step
elif keras.backend.backend() == "jax":
    from tfadmm.backend import jax_step as _backend_step
else:
    _backend_step = None

ADMM = "admm"
RETRAIN = "retrain"
_PHASES = (ADMM, RETRAIN)

# The penalty schedule's defaults, for `wrap`, `ADMMPhase` and recipes alike:
# rho starts at 1e-3 and grows x1.07 at each of 4 Z/U updates an epoch (about
# x1.31 an epoch). Several updates an epoch, each a small step, let Z follow W
# more closely than one large step an epoch (RESULTS.md measures both).
DEFAULT_RHO = 1e-3
DEFAULT_RHO_MULTIPLIER = 1.07
DEFAULT_UPDATES_PER_EPOCH = 4


def interval_for(steps, updates_per_epoch):
    """Training steps between Z/U updates for `updates_per_epoch` updates in an epoch of
    `steps` steps (at least 1)."""
    return max(1, steps // updates_per_epoch)


class _KernelRef:
    """Holds a kernel variable without Keras tracking it a second time."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable


@keras.saving.register_keras_serializable(package="tfadmm")
class ADMMModel(keras.Model):
    """A Keras model trained with ADMM towards compressed kernels.

    Made by `tfadmm.wrap`; use it like any Keras model (`compile`, `fit`,
    `evaluate`, `save`). Its training step adds the ADMM penalty
    `sum rho / 2 ||W - Z + U||^2` to the compiled loss, holds masked weights
    fixed, and runs the Z/U updates and the rho increase every
    `update_every_steps` steps (by default `updates_per_epoch` times an
    epoch, the interval taken from the data at every `fit`), counting steps
    itself: no callback is needed. The step runs on Keras' TensorFlow and JAX
    backends (`tfadmm.backend`). After `tfadmm.project`, the same step does
    masked retraining: compressed weights stay exactly in their sets.

    Args:
        model: the wrapped Keras model (built).
        kernels: the `KernelState`s (or their configs), one per compressed or
            frozen kernel.
        rho: the initial penalty weight.
        rho_multiplier: rho is multiplied by this after every Z/U update.
        rho_max: optional upper bound for rho.
        update_every_steps: training steps between Z/U updates; None: spread
            `updates_per_epoch` updates over each epoch.
        updates_per_epoch: Z/U updates per epoch when `update_every_steps`
            is None (the interval is `steps_per_epoch // updates_per_epoch`).
        distill: optional `tfadmm.Distill`: the training loss also learns the
            `teacher`'s outputs (ADMM phase and retraining alike).
        teacher: the distillation teacher (a `keras.Model`, not trained);
            required with `distill`.
    """

    def __init__(
        self,
        model,
        kernels,
        rho=DEFAULT_RHO,
        rho_multiplier=DEFAULT_RHO_MULTIPLIER,
        rho_max=None,
        update_every_steps=None,
        updates_per_epoch=DEFAULT_UPDATES_PER_EPOCH,
        distill=None,
        teacher=None,
        **kwargs,
    ):
        kwargs.setdefault("name", f"admm_{model.name}")
        super().__init__(**kwargs)
        self.model = model
        self.kernels = [
            k if isinstance(k, KernelState) else keras.saving.deserialize_keras_object(k)
            for k in kernels
        ]
        self.rho0 = float(rho)
        self.rho_multiplier = float(rho_multiplier)
        self.rho_max = None if rho_max is None else float(rho_max)
        self.update_every_steps = update_every_steps
        self.updates_per_epoch = int(updates_per_epoch)
        if isinstance(distill, dict):
            distill = keras.saving.deserialize_keras_object(distill)
        if (distill is None) != (teacher is None):
            raise ValueError(
                "`distill` and `teacher` go together. Received: "
                f"distill={distill!r}, teacher={type(teacher).__name__}"
            )
        self.distill = distill
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        state = dict(trainable=False, aggregation="only_first_replica")
        self.rho = self.add_weight(
            name="rho", shape=(), dtype="float32",
            initializer=keras.initializers.Constant(self.rho0), **state,
        )
        self.admm_step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", **state
        )
        self.update_interval = self.add_weight(
            name="update_interval", shape=(), dtype="int64",
            initializer=keras.initializers.Constant(update_every_steps or 1), **state,
        )
        # 0: ADMM phase, 1: masked retraining (after `tfadmm.project`).
        self.phase_index = self.add_weight(
            name="phase", shape=(), dtype="int64", initializer="zeros", **state
        )
        layers = find_compressible_layers(model)
        self._refs = [_KernelRef(layers[k.layer_name][k.kernel_name]) for k in self.kernels]
        self._traced_phase = None
        self._held = None
        self.built = True

    # -- state -----------------------------------------------------------------

    @property
    def phase(self):
        """`"admm"` or `"retrain"` (read eagerly)."""
        return _PHASES[int(ops.convert_to_numpy(self.phase_index))]

    def pairs(self, active_only=False):
        """`(KernelState, kernel variable)` pairs, in model order."""
        return [
            (state, ref.variable)
            for state, ref in zip(self.kernels, self._refs, strict=True)
            if state.active or not active_only
        ]

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss, mixed with the distillation term while training."""
        loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if self.teacher is None or not training:
            return loss
        soft = soft_target_loss(
            ops.stop_gradient(self.teacher(x, training=False)), y_pred,
            self.distill.temperature, self.distill.from_logits,
        )
        return (1.0 - self.distill.alpha) * loss + self.distill.alpha * soft

    def penalty(self):
        """The ADMM penalty summed over the active kernels (a scalar tensor)."""
        terms = [state.penalty(w, self.rho) for state, w in self.pairs(active_only=True)]
        return ops.sum(ops.stack(terms)) if terms else ops.zeros(())

    def held_pairs(self):
        """The pairs whose kernel has held entries (a mask with zeros).

        Read when the train function is made (masks change only at `wrap` and
        `project`, which make a new one), so that the training step skips the
        masking of kernels that hold nothing, such as a dense kernel in its
        first ADMM stage.
        """
        if self._held is None:
            return self.pairs()
        return [(state, w) for state, w in self.pairs() if id(state) in self._held]

    def mask_gradients(self, gradients, variables):
        """Zeroes the gradient of every held weight."""
        masks = {id(w): state.mask for state, w in self.held_pairs()}
        return [
            g if g is None or id(v) not in masks else g * ops.cast(masks[id(v)], g.dtype)
            for g, v in zip(gradients, variables, strict=True)
        ]

    def apply_masks(self, held_only=False):
        """Puts every held weight back at its value (undoes decay, momentum...).

        Args:
            held_only: only the kernels of `held_pairs()` (in the training step).
        """
        for state, w in self.held_pairs() if held_only else self.pairs():
            w.assign(ops.cast(state.masked(w), w.dtype))

    def admm_update(self):
        """One Z-step and U-step for every active kernel, then rho grows (each U rescaled
        to it, `admm.rescale_dual`)."""
        new_rho = admm.next_rho(self.rho, self.rho_multiplier, self.rho_max)
        for state, w in self.pairs(active_only=True):
            state.update(ops.cast(w, "float32"), self.rho, new_rho)
        self.rho.assign(new_rho)

    def admm_logs(self, penalty=None):
        """Per-step values for the fit logs: penalty, rho, per-kernel residuals."""
        logs = {}
        if self.phase_index_value == 0:
            logs["admm_penalty"] = self.penalty() if penalty is None else penalty
            logs["admm_rho"] = ops.convert_to_tensor(self.rho)
            for state, variable in self.pairs(active_only=True):
                # Tensors, not variables: some backends' ops (JAX's) take no `keras.Variable`.
                w, z, mask = (ops.convert_to_tensor(v) for v in (variable, state.z, state.mask))
                logs[f"{state.label}_residual"] = admm.primal_residual(w, z)
                for key, value in state.constraint.diagnostics(w, mask).items():
                    logs[f"{state.label}_{key}"] = value
        return logs

    def start_retraining(self):
        """Switches to masked retraining (after the kernels are hard-mapped): the ADMM
        penalty is off from here on, and the next `fit` traces a new train function."""
        self.phase_index.assign(_PHASES.index(RETRAIN))
        self.train_function = None

    def set_rho_schedule(self, rho, rho_multiplier, rho_max=None):
        """Changes the penalty schedule of the ADMM phase in progress.

        A new `rho` restarts the schedule there (the current rho becomes `rho`);
        the same `rho` keeps the current, grown value. `rho_multiplier` and
        `rho_max` apply from the next Z/U update.
        """
        if self.rho0 != rho:
            self.rho.assign(rho)
        self.rho0, self.rho_multiplier = float(rho), float(rho_multiplier)
        self.rho_max = None if rho_max is None else float(rho_max)

    @property
    def phase_index_value(self):
        """The phase the current train function was traced for."""
        if self._traced_phase is None:
            self._traced_phase = int(ops.convert_to_numpy(self.phase_index))
        return self._traced_phase

    # -- training --------------------------------------------------------------

    def train_step(self, *args):
        # Keras' signature of the backend: `(data)` on TensorFlow, `(state, data)` on JAX.
        if _backend_step is None:
            raise NotImplementedError(
                "tfadmm's training step supports the TensorFlow and JAX backends. "
                f"Received: {keras.backend.backend()}"
            )
        return _backend_step.train_step(self, *args)

    def test_step(self, *args):
        result = super().test_step(*args)
        if self._multi_worker():
            result = reducible_logs(result)
        return result

    def _multi_worker(self):
        if keras.backend.backend() != "tensorflow":
            return False
        return is_multi_worker(self.distribute_strategy)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras reduces the first batch across workers here, which fails under
        # MultiWorkerMirroredStrategy: build from this worker's own batch instead.
        if iterator is not None and self._multi_worker():
            data_batch, iterator = first_local_batch(iterator, self.distribute_strategy), None
        return getattr(super(), MAYBE_SYMBOLIC_BUILD)(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        phase = int(ops.convert_to_numpy(self.phase_index))
        if phase != self._traced_phase:
            self._traced_phase = phase
            force = True
        if force or self.train_function is None:
            self._held = {
                id(state) for state, _ in self.pairs()
                if not np.all(ops.convert_to_numpy(state.mask) == 1)
            }
        self._own_buffers()
        return super().make_train_function(force=force)

    def make_test_function(self, force=False):
        self._own_buffers()
        return super().make_test_function(force=force)

    def make_predict_function(self, force=False):
        self._own_buffers()
        return super().make_predict_function(force=force)

    def _own_buffers(self):
        # Keras' JAX `fit`, `evaluate` and `predict` donate the variables' buffers to
        # their steps (right after making the step function): no two may share one.
        if keras.backend.backend() == "jax":
            _backend_step.unshare_buffers(self.variables)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        if self.update_every_steps is None:
            steps = _steps_per_epoch(x, batch_size, kwargs)
            self.update_interval.assign(interval_for(steps, self.updates_per_epoch))
        history = super().fit(x, y, batch_size=batch_size, epochs=epochs, **kwargs)
        if getattr(self.optimizer, "use_ema", False):
            # Keras copied the moving averages over the weights at the end of fit.
            self.apply_masks()
        return history

    # -- serialization ---------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "model": keras.saving.serialize_keras_object(self.model),
            "kernels": [keras.saving.serialize_keras_object(k) for k in self.kernels],
            "rho": self.rho0,
            "rho_multiplier": self.rho_multiplier,
            "rho_max": self.rho_max,
            "update_every_steps": self.update_every_steps,
            "updates_per_epoch": self.updates_per_epoch,
            "distill": None if self.distill is None else keras.saving.serialize_keras_object(
                self.distill),
            "teacher": None if self.teacher is None else keras.saving.serialize_keras_object(
                self.teacher),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Saved before `updates_per_epoch` existed: those models updated once an epoch.
        config.setdefault("updates_per_epoch", 1)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        if config.get("teacher") is not None:
            config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        return cls(**config)

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._traced_phase = None


def _steps_per_epoch(x, batch_size, fit_kwargs):
    """Training steps in one epoch of `fit(x, ...)`, for once-per-epoch updates."""
    if fit_kwargs.get("steps_per_epoch"):
        return int(fit_kwargs["steps_per_epoch"])
    received = f"x of type {type(x).__name__}"
    if lazy_tensorflow.is_dataset(x):
        steps = int(x.cardinality())
        if steps > 0:
            return steps
        kind = "infinite" if steps == lazy_tensorflow.INFINITE_CARDINALITY else "unknown"
        received = f"a tf.data.Dataset of {kind} cardinality"
    elif isinstance(x, keras.utils.PyDataset):
        return len(x)
    else:
        leaves = [leaf for leaf in keras.tree.flatten(x) if hasattr(leaf, "shape")]
        if leaves:
            rows = int(leaves[0].shape[0])
            split = fit_kwargs.get("validation_split") or 0.0
            if split and fit_kwargs.get("validation_data") is None:
                rows = int(math.floor(rows * (1.0 - split)))
            return max(1, math.ceil(rows / (batch_size or 32)))
    raise ValueError(
        "Cannot tell how many steps an epoch has, to spread the Z/U updates over "
        "it: pass `steps_per_epoch` to fit(), or `update_every_steps` to "
        f"tfadmm.wrap(). Received: {received}"
    )
