import sys

import numpy as np
import pytest

from tfadmm.data import raw as raw_data
from tfadmm.data.array_batches import ArrayBatches
from tfadmm.data.array_pipeline import build_array_splits, make_array_preprocess, pad_crop_flip
from tfadmm.data.pipeline import build_splits
from tfadmm.data.specs import get_spec
from tfadmm.errors import MissingDependencyError


def _raw(shape=(8, 8, 3), train=40, test=12):
    rng = np.random.default_rng(0)
    return raw_data.from_arrays(
        rng.integers(0, 256, (train, *shape), dtype=np.uint8), np.arange(train) % 10,
        rng.integers(0, 256, (test, *shape), dtype=np.uint8), np.arange(test) % 10,
        origin="arrays",
    )


def _all(batches):
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in batches], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def _both(raw, name, **options):
    options = {"batch_size": 16, "validation_split": 0.2, "take": None, "seed": 0,
               "augment": False, **options}
    return (build_splits(raw, get_spec(name), name=name, cache=True, **options),
            build_array_splits(raw, get_spec(name), name=name, **options))


@pytest.mark.parametrize(("name", "shape"), [("fashion_mnist", (8, 8)), ("cifar10", (8, 8, 3)),
                                             ("other", (8, 8, 3))])
def test_evaluation_batches_equal_the_tf_data_ones(name, shape):
    tf_splits, array_splits = _both(_raw(shape), name, take=20)
    assert isinstance(array_splits.test, ArrayBatches)
    for split in ("validation", "test"):
        x_tf, y_tf = _all(getattr(tf_splits, split))
        x_np, y_np = _all(getattr(array_splits, split))
        np.testing.assert_array_equal(y_np, y_tf)
        np.testing.assert_array_equal(x_np, x_tf)
        assert x_np.dtype == np.float32 and y_np.dtype == np.int64
    for key in ("num_examples", "input_shape", "num_classes", "name", "origin"):
        assert getattr(array_splits, key) == getattr(tf_splits, key)


def test_training_batches_hold_the_same_examples_shuffled_by_the_seed():
    tf_splits, array_splits = _both(_raw(), "cifar10")
    x_tf, y_tf = _all(tf_splits.train)
    x_np, y_np = _all(array_splits.train)
    order_tf, order_np = np.lexsort(x_tf.reshape(len(x_tf), -1).T), np.lexsort(
        x_np.reshape(len(x_np), -1).T)
    np.testing.assert_allclose(x_np[order_np], x_tf[order_tf], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y_np[order_np], y_tf[order_tf])
    assert len(array_splits.train) == 2 and array_splits.train.batch_size == 16
    again = _all(array_splits.train_for_seed(0))[1]
    other = _all(array_splits.train_for_seed(1))[1]
    np.testing.assert_array_equal(again, y_np)
    assert not np.array_equal(other, y_np)


def test_cifar_augmentation_pads_crops_and_flips_each_image():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1) + 1
    out = pad_crop_flip(images, np.random.default_rng(5), pad=2)
    assert out.shape == images.shape and out.dtype == np.uint8
    for image, crop in zip(images[..., 0], out[..., 0], strict=True):
        padded = np.pad(image, 2)
        windows = [padded[t:t + 4, s:s + 4] for t in range(5) for s in range(5)]
        assert any(np.array_equal(crop, w) or np.array_equal(crop, w[:, ::-1])
                   for w in windows)
    augmented = make_array_preprocess(get_spec("cifar10"), (8, 8, 3), training=True,
                                      augment=True)
    plain = make_array_preprocess(get_spec("cifar10"), (8, 8, 3), training=True, augment=False)
    batch = _raw().arrays["train"][0][:16]
    rng = np.random.default_rng
    np.testing.assert_array_equal(augmented(batch, rng(1)), augmented(batch, rng(1)))
    assert not np.array_equal(augmented(batch, rng(1)), plain(batch, rng(1)))


def test_the_imagenet_pipeline_needs_tensorflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError) as info:
        make_array_preprocess(get_spec("imagenet2012"), (224, 224, 3), training=False,
                              augment=False)
    assert str(info.value) == (
        "tfadmm.data.load's ImageNet pipeline (resized crops) needs TensorFlow. Expected an "
        "importable `tensorflow` package (pip install tensorflow); the rest of tfadmm (wrap, "
        "fit, project, strip, `.keras` files, recipes on IDX or .npz data) runs without it. "
        "Received: no importable `tensorflow` (Keras backend: tensorflow)"
    )
