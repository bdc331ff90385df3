"""Turning `RawData` into the batched, normalised, augmented `Splits` the papers train on."""

from __future__ import annotations

import math
import numbers

from tfadmm.data.specs import GENERIC_SIZE, Normalization
from tfadmm.data.splits import Splits
from tfadmm.errors import DataError
from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.data (tf.data pipelines)")

# Splits whose decoded uint8 images fit in this many bytes are cached in memory.
CACHE_LIMIT_BYTES = 2 * 1024**3
# Shuffle buffer for datasets too large to cache (ImageNet: encoded JPEG bytes).
SHUFFLE_BUFFER = 10_000
IMAGENET_SIZE = 224
IMAGENET_RESIZE = 256
CIFAR_PAD = 4


def split_sizes(num_train, num_test, *, validation_split, take):
    """`(train, validation, test)` example counts.

    Without `take`, the last `validation_split` of the training data is the
    validation split. With `take`, `take` training examples are used, and the
    validation and test splits shrink in proportion.

    Raises:
        DataError: `take` larger than the training data allows.
    """
    if take is None:
        n_val = round(num_train * validation_split)
        return num_train - n_val, n_val, num_test
    n_val = math.ceil(take * validation_split / (1 - validation_split)) if validation_split else 0
    if take + n_val > num_train:
        raise DataError(
            f"`take` asks for more examples than the training data holds: expected "
            f"take + validation ({take} + {n_val}) <= {num_train}. Received: take={take}"
        )
    n_test = min(num_test, max(1, math.ceil(take * num_test / num_train)))
    return take, n_val, n_test


def input_shape_for(spec, image_shape):
    """The `(height, width, channels)` of the examples the pipeline yields."""
    if spec.pipeline == "imagenet":
        return (IMAGENET_SIZE, IMAGENET_SIZE, image_shape[-1])
    if None in image_shape[:2]:
        return (*GENERIC_SIZE, image_shape[-1])
    return tuple(int(d) for d in image_shape)


def _normalise(image, spec, channels):
    return Normalization.of_spec(spec).apply(tf.cast(image, tf.float32), channels)


def _resize_shorter(image, size):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    return tf.image.resize(image, new, antialias=True)


def _center_crop(image, size):
    shape = tf.shape(image)
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def _random_resized_crop(image, size, seed):
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, (size, size), antialias=True)


def make_preprocess(spec, shape, *, training, augment):
    """`preprocess(image, seed) -> float32 image` for one decoded uint8 image."""
    height, width, channels = shape

    def preprocess(image, seed):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if spec.pipeline == "imagenet":
            if training and augment:
                image = _random_resized_crop(image, IMAGENET_SIZE, crop_seed)
                image = tf.image.stateless_random_flip_left_right(image, flip_seed)
            else:
                image = _center_crop(_resize_shorter(image, IMAGENET_RESIZE), IMAGENET_SIZE)
        elif spec.pipeline == "cifar" and training and augment:
            image = tf.image.pad_to_bounding_box(
                image, CIFAR_PAD, CIFAR_PAD, height + 2 * CIFAR_PAD, width + 2 * CIFAR_PAD
            )
            image = tf.image.stateless_random_crop(image, (height, width, channels), crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        if spec.pipeline in ("generic", "cifar", "grayscale"):
            # Sources whose images differ from the expected size (image folders).
            image_shape = tf.shape(image)
            image = tf.cond(
                tf.reduce_all(image_shape[:2] == (height, width)),
                lambda: tf.cast(image, tf.float32),
                lambda: tf.image.resize(image, (height, width), antialias=True),
            )
        image = _normalise(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), spec, channels)
        return tf.ensure_shape(image, shape)

    return preprocess


def _pipeline(raw, spec, split, start, stop, shape, *, training, augment, cache, seed, batch_size):
    ds = raw.read(split, start, stop)
    count = stop - start
    known = None not in raw.image_shape
    cached = cache and known and count * math.prod(raw.image_shape) <= CACHE_LIMIT_BYTES
    if cached:
        ds = ds.map(lambda x, y: (raw.decode(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.cache()
    if training:
        buffer = max(1, count if cached else min(count, SHUFFLE_BUFFER))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    preprocess = make_preprocess(spec, shape, training=training, augment=augment)

    def apply(example, rng):
        image, label = example
        if not cached:
            image = raw.decode(image)
        return preprocess(image, rng), tf.cast(label, tf.int64)

    ds = tf.data.Dataset.zip((ds, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def check_arguments(batch_size, validation_split, take, seed):
    """Raises DataError for arguments out of range, echoing the received value."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(
            "Invalid `batch_size`: expected a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, numbers.Real)
        or not 0 <= validation_split < 1
    ):
        raise DataError(
            "Invalid `validation_split`: expected a number in [0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    if take is not None and (isinstance(take, bool) or not isinstance(take, int) or take < 1):
        raise DataError(
            f"Invalid `take`: expected a positive integer or None. Received: take={take!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"Invalid `seed`: expected an integer. Received: seed={seed!r}")


def sizes_of(raw, *, name, validation_split, take):
    """`split_sizes` of `raw`, checked to leave training examples.

    Raises:
        DataError: no training example left.
    """
    n_train, n_val, n_test = split_sizes(
        raw.num_train, raw.num_test, validation_split=validation_split, take=take
    )
    if n_train < 1:
        raise DataError(
            f"Dataset '{name}' ({raw.origin}) leaves no training examples: "
            f"{raw.num_train} examples, validation_split={validation_split!r}."
        )
    return n_train, n_val, n_test


def build_splits(raw, spec, *, name, batch_size, validation_split, take, seed, augment, cache):
    """The `Splits` of `raw`: validation from the training data's tail, then pipelines."""
    n_train, n_val, n_test = sizes_of(raw, name=name, validation_split=validation_split, take=take)
    shape = input_shape_for(spec, raw.image_shape)
    common = dict(shape=shape, augment=augment, cache=cache, seed=seed, batch_size=batch_size)
    train = _pipeline(raw, spec, "train", 0, n_train, training=True, **common)

    def make_train(train_seed):
        options = {**common, "seed": train_seed}
        return _pipeline(raw, spec, "train", 0, n_train, training=True, **options)

    validation = None
    if n_val:
        validation = _pipeline(
            raw, spec, "train", raw.num_train - n_val, raw.num_train, training=False, **common
        )
    test = _pipeline(raw, spec, "test", 0, n_test, training=False, **common)
    return Splits(
        train=train,
        validation=validation,
        test=test,
        num_classes=raw.num_classes,
        input_shape=shape,
        name=name,
        num_examples={"train": n_train, "validation": n_val, "test": n_test},
        origin=raw.origin,
        make_train=make_train,
    )
