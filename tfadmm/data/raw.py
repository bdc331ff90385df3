"""`RawData`: what every source hands to the pipeline, before preprocessing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.data (tf.data pipelines)")


def _identity(image):
    return image


@dataclasses.dataclass(frozen=True)
class RawData:
    """Examples as stored: unbatched `(image, label)` pairs, read by range.

    Attributes:
        num_train: examples in the source's training split.
        num_test: examples in its test split.
        num_classes: number of classes.
        image_shape: `(height, width, channels)` when every image has that
            shape, else `(None, None, channels)`.
        read: `read(split, start, stop)` with `split` "train" or "test" returns
            the examples `start:stop` of that split in stored order, as a
            `tf.data.Dataset` of `(image, int64 label)`.
        decode: maps a stored image (uint8 array, encoded bytes or a file
            path) to a uint8 HWC tensor.
        origin: a description of where the data lives.
        arrays: `{"train": (x, y), "test": (x, y)}` for a source held in memory
            (uint8 NHWC images, int64 labels), which can then be fed without
            TensorFlow; None for a source read through `read` only (TFDS, folders).
    """

    num_train: int
    num_test: int
    num_classes: int
    image_shape: tuple
    read: Callable[[str, int, int], tf.data.Dataset]
    origin: str
    decode: Callable = _identity
    arrays: dict | None = dataclasses.field(default=None, compare=False, repr=False)


def from_arrays(x_train, y_train, x_test, y_test, *, num_classes=None, origin=""):
    """RawData over in-memory uint8 NHWC arrays and integer labels."""
    arrays = {"train": (x_train, y_train), "test": (x_test, y_test)}
    for split, (x, y) in arrays.items():
        arrays[split] = (x[..., None] if x.ndim == 3 else x, np.asarray(y).astype("int64"))
    labels = np.concatenate([y_train, y_test]) if len(y_test) else y_train
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if len(labels) else 0

    def read(split, start, stop):
        x, y = arrays[split]
        return tf.data.Dataset.from_tensor_slices((x[start:stop], y[start:stop]))

    return RawData(
        num_train=len(arrays["train"][0]),
        num_test=len(arrays["test"][0]),
        num_classes=num_classes,
        image_shape=tuple(arrays["train"][0].shape[1:]),
        read=read,
        origin=origin,
        arrays=arrays,
    )
