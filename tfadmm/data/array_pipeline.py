"""Turning in-memory `RawData` into `Splits` of `ArrayBatches`: the data path without TensorFlow.

The same examples, split sizes, normalisation and (CIFAR) augmentation as the tf.data
pipelines of `tfadmm.data.pipeline`, in numpy. Validation and test batches equal the
tf.data ones; training batches follow numpy's shuffle and random crops, drawn from the
same seed but not the same numbers as tf.data's.
"""

from __future__ import annotations

import numpy as np

from tfadmm import lazy_tensorflow
from tfadmm.data.array_batches import ArrayBatches
from tfadmm.data.pipeline import CIFAR_PAD, input_shape_for, sizes_of
from tfadmm.data.specs import Normalization
from tfadmm.data.splits import Splits


def pad_crop_flip(images, rng, pad=CIFAR_PAD):
    """CIFAR's augmentation of a uint8 NHWC batch: zero-pad by `pad`, random crop back, random
    left-right flip (each image its own crop and coin)."""
    n, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    tops = rng.integers(0, 2 * pad + 1, n)
    lefts = rng.integers(0, 2 * pad + 1, n)
    rows = (tops[:, None] + np.arange(height))[:, :, None]
    cols = (lefts[:, None] + np.arange(width))[:, None, :]
    out = padded[np.arange(n)[:, None, None], rows, cols]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip][:, :, ::-1]
    return out


def make_array_preprocess(spec, shape, *, training, augment):
    """`preprocess(uint8 batch, rng) -> float32 batch`, as `pipeline.make_preprocess` per image.

    Raises:
        MissingDependencyError: the ImageNet pipeline (its resized crops need TensorFlow).
    """
    if spec.pipeline == "imagenet":
        raise lazy_tensorflow.missing(
            "tfadmm.data.load's ImageNet pipeline (resized crops)",
            "no importable `tensorflow`",
        )
    channels = shape[-1]
    normalization = Normalization.of_spec(spec)
    crops = spec.pipeline == "cifar" and training and augment

    def preprocess(images, rng):
        if crops:
            images = pad_crop_flip(images, rng)
        return normalization.apply(images.astype(np.float32), channels)

    return preprocess


def build_array_splits(raw, spec, *, name, batch_size, validation_split, take, seed, augment):
    """The `Splits` of an in-memory `raw` (`raw.arrays`), as `pipeline.build_splits` cuts them:
    validation from the training data's tail, the training split shuffled with `seed`."""
    n_train, n_val, n_test = sizes_of(raw, name=name, validation_split=validation_split, take=take)
    shape = input_shape_for(spec, raw.image_shape)
    (x_train, y_train), (x_test, y_test) = raw.arrays["train"], raw.arrays["test"]
    evaluation = make_array_preprocess(spec, shape, training=False, augment=augment)
    training = make_array_preprocess(spec, shape, training=True, augment=augment)

    def batches(x, y, start, stop, preprocess, shuffle_seed=None):
        return ArrayBatches(x[start:stop], y[start:stop], batch_size=batch_size,
                            preprocess=preprocess, seed=shuffle_seed)

    def make_train(train_seed):
        return batches(x_train, y_train, 0, n_train, training, train_seed)

    validation = None
    if n_val:
        validation = batches(x_train, y_train, raw.num_train - n_val, raw.num_train, evaluation)
    return Splits(
        train=make_train(seed),
        validation=validation,
        test=batches(x_test, y_test, 0, n_test, evaluation),
        num_classes=raw.num_classes,
        input_shape=shape,
        name=name,
        num_examples={"train": n_train, "validation": n_val, "test": n_test},
        origin=raw.origin,
        make_train=make_train,
    )
