"""What `ADMMModel` does differently under `MultiWorkerMirroredStrategy`.

Keras 3 `fit` / `evaluate` fail under that strategy in two places
(keras-team/keras#20585): the symbolic build reduces the first, per-replica
input batch across workers, and per-step scalar logs are reduced with
`strategy.reduce("MEAN", v, axis=0)`, which needs an axis to reduce. ADMMModel
overrides its own `_maybe_symbolic_build` and steps with these helpers (Keras
itself is left as it is): the build takes this worker's first replica's batch,
and the step returns its scalar logs with a leading axis of 1, which that
reduction averages over all replicas.
"""

from __future__ import annotations

from tfadmm.lazy_tensorflow import is_loaded, needs_tensorflow

tf = needs_tensorflow("tf.distribute training")


def is_multi_worker(strategy):
    return is_loaded() and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def first_local_batch(iterator, strategy):
    """This worker's first replica's first batch of a Keras epoch iterator."""
    for _, _, batches in iterator:
        return tf.nest.map_structure(
            lambda v: strategy.experimental_local_results(v)[0], next(batches)
        )
    return None


def reducible_logs(logs):
    """Scalar logs with a leading axis, so that an `axis=0` mean over replicas works."""
    return {
        key: tf.reshape(value, (1,)) if tf.is_tensor(value) and value.shape.rank == 0 else value
        for key, value in logs.items()
    }
