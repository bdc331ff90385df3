import numpy as np
import pytest
import tensorflow as tf

from tfadmm.data.pipeline import make_preprocess, split_sizes
from tfadmm.data.specs import get_spec


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((60000, 10000, 0.1, None), (54000, 6000, 10000)),
        ((60000, 10000, 0.0, None), (60000, 0, 10000)),
        ((60000, 10000, 0.1, 900), (900, 100, 150)),
    ],
)
def test_split_sizes(args, expected):
    num_train, num_test, validation_split, take = args
    assert split_sizes(num_train, num_test, validation_split=validation_split, take=take) == (
        expected
    )


def test_cifar_augmentation_keeps_shape_and_is_seeded():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 32, 3)), tf.uint8)
    train = make_preprocess(get_spec("cifar10"), (32, 32, 3), training=True, augment=True)
    a, b = train(image, tf.constant([1, 2], tf.int64)), train(image, tf.constant([1, 2], tf.int64))
    assert a.shape == (32, 32, 3) and a.dtype == tf.float32
    np.testing.assert_array_equal(a, b)
    evaluate = make_preprocess(get_spec("cifar10"), (32, 32, 3), training=False, augment=True)
    x = evaluate(image, tf.constant([1, 2], tf.int64)).numpy()
    mean, std = np.array(get_spec("cifar10").mean), np.array(get_spec("cifar10").std)
    np.testing.assert_allclose(x, (image.numpy() / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)


def test_imagenet_evaluation_resizes_256_and_crops_224():
    image = tf.zeros((300, 400, 3), tf.uint8)
    evaluate = make_preprocess(get_spec("imagenet2012"), (224, 224, 3), training=False,
                               augment=True)
    train = make_preprocess(get_spec("imagenet2012"), (224, 224, 3), training=True, augment=True)
    seed = tf.constant([0, 1], tf.int64)
    assert evaluate(image, seed).shape == train(image, seed).shape == (224, 224, 3)
