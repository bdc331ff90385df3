"""Keras 3 fixes for `MultiWorkerMirroredStrategy` (keras-team/keras#20585).

Keras 3.x `fit` / `evaluate` fail under `MultiWorkerMirroredStrategy` in two
places: the symbolic build reduces the first (per-replica) input batch with
`strategy.reduce`, and the per-step logs (scalars) are reduced with
`axis=0`. `enable()` replaces both, for that strategy only: the build takes
this worker's first replica's batch, and scalar logs are averaged over all
replicas. Every other strategy keeps Keras' own code. `tfadmm.wrap` calls it
when it runs under a multi-worker strategy, and the recipe runner when its
`distribute` is `multi_worker`.
"""

from __future__ import annotations

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as _trainer

_ORIGINAL = {}


def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _reduce_per_replica(values, strategy, reduction):
    if not _is_multi_worker(strategy) or reduction not in ("auto", "mean"):
        return _ORIGINAL["reduce"](values, strategy, reduction)

    def reduce(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.reduce("MEAN", value, axis=None)
        return value

    return tf.nest.map_structure(reduce, values)


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    strategy = self._distribute_strategy
    if iterator is not None and _is_multi_worker(strategy):
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0], next(batches)
            )
            break
        iterator = None
    return _ORIGINAL["build"](self, iterator=iterator, data_batch=data_batch)


def enable():
    """Installs the two fixes (idempotent)."""
    if _ORIGINAL:
        return
    _ORIGINAL["reduce"] = _trainer.reduce_per_replica
    _ORIGINAL["build"] = _trainer.TensorFlowTrainer._maybe_symbolic_build
    _trainer.reduce_per_replica = _reduce_per_replica
    _trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def enable_if_multi_worker():
    """`enable()` when the current `tf.distribute` strategy is multi-worker."""
    if _is_multi_worker(tf.distribute.get_strategy()):
        enable()
