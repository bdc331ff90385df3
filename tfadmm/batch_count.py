"""How many batches one pass over a dataset yields: a `tf.data.Dataset` or a `PyDataset`."""

from __future__ import annotations

import keras

from tfadmm import lazy_tensorflow

#: An endless dataset (`tf.data.INFINITE_CARDINALITY`; a `PyDataset` whose
#: `num_batches` is None).
INFINITE = lazy_tensorflow.INFINITE_CARDINALITY
#: A dataset whose length cannot be told without iterating it
#: (`tf.data.UNKNOWN_CARDINALITY`), or something that is not a dataset.
UNKNOWN = -2


def batch_count(data) -> int:
    """The batches in one pass over `data`, as `tf.data.Dataset.cardinality` counts them.

    Args:
        data: a `tf.data.Dataset` or a `keras.utils.PyDataset`.

    Returns:
        The count; `INFINITE` for an endless dataset; `UNKNOWN` when it cannot be
        told (a tf.data pipeline with a filter, or anything else than those two).
    """
    if lazy_tensorflow.is_dataset(data):
        return int(data.cardinality())
    if isinstance(data, keras.utils.PyDataset):
        try:
            count = data.num_batches
        except NotImplementedError:  # neither `__len__` nor `num_batches`
            return UNKNOWN
        return INFINITE if count is None else int(count)
    return UNKNOWN


def is_dataset(data) -> bool:
    """Whether `data` is a `tf.data.Dataset` or a `keras.utils.PyDataset`."""
    return lazy_tensorflow.is_dataset(data) or isinstance(data, keras.utils.PyDataset)
