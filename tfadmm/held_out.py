"""A classifier's loss and accuracy on held-out `(x, y)` batches, forward passes only.

What `tfadmm.allocate`'s and `tfadmm.quantization_sensitivity`'s analyses measure
each layer with: the data is read once into numpy batches, then every variant
of the model is evaluated on the same batches.
"""

from __future__ import annotations

import keras
import numpy as np

from tfadmm.batch_count import INFINITE, batch_count, is_dataset
from tfadmm.stage import outputs_logits

BATCH_SIZE = 256  # `(x, y)` arrays are fed in batches of this size


def as_batches(data):
    """`data` as a list of `(x, y)` numpy batches.

    Args:
        data: a finite `tf.data` dataset or `PyDataset` of `(x, y)` batches, or
            `(x, y)` arrays.

    Raises:
        ValueError: no data, an infinite dataset, or no example.
    """
    if data is None:
        raise ValueError("Invalid `data`: expected a tf.data dataset of (x, y) batches or "
                         "(x, y) arrays. Received: data=None")
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        batches = [(x[i:i + BATCH_SIZE], y[i:i + BATCH_SIZE]) for i in range(0, len(x),
                                                                          BATCH_SIZE)]
    else:
        if not is_dataset(data) or batch_count(data) == INFINITE:
            raise ValueError("Invalid `data`: expected a finite tf.data dataset or PyDataset "
                             f"of (x, y) batches, or (x, y) arrays. Received: {data!r}")
        batches = [(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))
                   for x, y in data]
    if not batches or not sum(len(y) for _, y in batches):
        raise ValueError(f"Invalid `data`: expected at least one example. Received: {data!r}")
    return batches


def loss_and_accuracy(model, batches):
    """`(mean cross-entropy, accuracy)` of `model` on `batches` (logits or softmax output;
    integer or one-hot labels)."""
    from_logits = outputs_logits(model)
    total_loss, correct, count = 0.0, 0, 0
    for x, y in batches:
        out = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        labels = np.argmax(y, axis=-1) if y.ndim == out.ndim else y.reshape(-1).astype(int)
        if from_logits:
            out = out - out.max(axis=-1, keepdims=True)
            log_p = out - np.log(np.exp(out).sum(axis=-1, keepdims=True))
        else:
            log_p = np.log(np.clip(out, 1e-7, 1.0))
        total_loss -= float(log_p[np.arange(len(labels)), labels].sum())
        correct += int((out.argmax(axis=-1) == labels).sum())
        count += len(labels)
    return total_loss / count, correct / count
