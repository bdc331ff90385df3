"""Where and how a recipe run computes: its `tf.distribute` strategy and dtype policy.

`distribute` (recipe key) picks the strategy that the model build, `wrap` and
`compile` run under; `precision` the global Keras dtype policy. Under
`multi_worker` every worker runs the same recipe; only the chief (the
`chief` task, else worker 0) writes the run directory, the other workers
train with it and read it on `--resume` (so it must be a shared directory
for a multi-machine resume).
"""

from __future__ import annotations

import contextlib
import os

import keras

from tfadmm.errors import MissingDependencyError, TfadmmError
from tfadmm.lazy_tensorflow import needs_tensorflow
from tfadmm.recipes import run_directory

tf = needs_tensorflow("Recipe runs (tf.distribute strategies)")


def make_strategy(name):
    """The `tf.distribute.Strategy` a recipe's `distribute` names.

    On another Keras backend than TensorFlow (JAX), `none` is no strategy at
    all (None): the run needs no TensorFlow there.

    Raises:
        TfadmmError: `multi_worker` without `TF_CONFIG`, a strategy created
            too late in the process, or no TPU to connect to.
        MissingDependencyError: a strategy other than `none` on another
            Keras backend than TensorFlow.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        if name == "none":
            return None
        raise MissingDependencyError(
            f"distribute: {name} (a tf.distribute strategy) needs Keras' TensorFlow backend: "
            "expected KERAS_BACKEND=tensorflow with TensorFlow installed, or distribute: none. "
            f"Received: Keras backend {backend}"
        )
    try:
        if name == "mirrored":
            return tf.distribute.MirroredStrategy()
        if name == "multi_worker":
            if not os.environ.get("TF_CONFIG"):
                raise TfadmmError(
                    "distribute: multi_worker reads the cluster from the TF_CONFIG environment "
                    "variable, which is not set. Received: TF_CONFIG=None"
                )
            return tf.distribute.MultiWorkerMirroredStrategy()
        if name == "tpu":
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
    except TfadmmError:
        raise
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TfadmmError(f"distribute: cannot start the '{name}' strategy: {first}") from None
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes the run directory (always, unless multi-worker)."""
    if strategy is None:
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def jit_compile_for(recipe):
    """The recipe's `jit_compile`; `auto` is off under a strategy (XLA is one device)."""
    if recipe.jit_compile == "auto" and recipe.distribute != "none":
        return False
    return recipe.jit_compile


@contextlib.contextmanager
def execution(recipe):
    """Sets the dtype policy, starts the strategy and enters its scope.

    The previous global dtype policy comes back afterwards. Yields the
    strategy (None: no strategy, see `make_strategy`).
    """
    previous = keras.config.dtype_policy()
    strategy = make_strategy(recipe.distribute)
    scope = contextlib.nullcontext() if strategy is None else strategy.scope()
    keras.config.set_dtype_policy(recipe.precision)
    try:
        with scope, run_directory.writing(is_chief(strategy)):
            yield strategy
    finally:
        keras.config.set_dtype_policy(previous)
