import keras
import numpy as np
import pytest
import tensorflow as tf

import tfadmm
from tfadmm.batchnorm import batch_norm_layers


def _model():
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="conv_bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(4, name="fc1")(x)
    x = keras.layers.BatchNormalization(momentum=0.99, name="fc1_bn")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="fc2")(x))


def _brute_force(model, batches):
    """Each batch in training mode by hand (NumPy), then the batch-size-weighted averages."""
    conv_bn = model.get_layer("conv_bn")
    stats = {"conv_bn": [], "fc1_bn": []}
    for x in batches:
        h = np.asarray(model.get_layer("conv")(x), np.float64)
        mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        stats["conv_bn"].append((len(x), mean, var))
        gamma, beta = np.asarray(conv_bn.gamma), np.asarray(conv_bn.beta)
        h = np.maximum((h - mean) / np.sqrt(var + conv_bn.epsilon) * gamma + beta, 0)
        h = np.asarray(model.get_layer("fc1")(h.reshape(len(x), -1).astype("float32")),
                       np.float64)
        stats["fc1_bn"].append((len(x), h.mean(axis=0), h.var(axis=0)))
    expected = {}
    for name, rows in stats.items():
        sizes = np.array([n for n, _, _ in rows], np.float64)
        weights = sizes / sizes.sum()
        expected[name] = (sum(w * m for w, (_, m, _) in zip(weights, rows, strict=True)),
                          sum(w * v for w, (_, _, v) in zip(weights, rows, strict=True)))
    return expected


def _data(sizes, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(2.0, 3.0, size=(n, 5, 5, 2)).astype("float32") for n in sizes]
    ys = [rng.integers(0, 2, size=(n,)) for n in sizes]
    return xs, ys


def test_exact_against_a_brute_force_computation():
    model = _model()
    xs, ys = _data([8, 8, 5])  # a short last batch: weighted by its size
    expected = _brute_force(model, xs)
    kernel = np.asarray(model.get_layer("conv").kernel)
    names = tfadmm.recalibrate_batchnorm(model, list(zip(xs, ys, strict=True)))
    assert names == ["conv_bn", "fc1_bn"]
    for name, (mean, var) in expected.items():
        layer = model.get_layer(name)
        np.testing.assert_allclose(np.asarray(layer.moving_mean), mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), var, rtol=1e-5, atol=1e-5)
    assert model.get_layer("conv_bn").momentum == 0.9  # restored
    assert model.get_layer("fc1_bn").momentum == 0.99
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv").kernel), kernel)


def test_steps_and_datasets():
    model = _model()
    xs, ys = _data([6, 6, 6, 6])
    expected = _brute_force(model, xs[:2])
    dataset = tf.data.Dataset.from_tensor_slices((np.concatenate(xs), np.concatenate(ys)))
    tfadmm.recalibrate_batchnorm(model, dataset.batch(6).repeat(), steps=2)
    np.testing.assert_allclose(np.asarray(model.get_layer("fc1_bn").moving_mean),
                               expected["fc1_bn"][0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError) as info:
        tfadmm.recalibrate_batchnorm(model, dataset.batch(6).repeat())
    assert str(info.value) == (
        "Cannot recalibrate batch norms on an infinite dataset without `steps`: "
        "expected a finite dataset or steps=N. Received: steps=None"
    )
    with pytest.raises(ValueError, match=r"^Invalid `steps`: expected a positive integer or "
                                         r"None\. Received: steps=0$"):
        tfadmm.recalibrate_batchnorm(model, dataset.batch(6), steps=0)


def test_no_batch_norm_is_a_no_op_and_frozen_ones_stay():
    inputs = keras.Input((3,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert tfadmm.recalibrate_batchnorm(plain, [np.ones((2, 3), "float32")]) == []
    model = _model()
    model.get_layer("conv_bn").trainable = False
    before = np.asarray(model.get_layer("conv_bn").moving_mean).copy()
    xs, _ = _data([4])
    assert tfadmm.recalibrate_batchnorm(model, xs) == ["fc1_bn"]
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv_bn").moving_mean), before)


def test_admm_model_recalibrates_its_model_not_the_teacher():
    model = _model()
    wrapped = tfadmm.wrap(model, {"conv": tfadmm.Sparsity(0.5)}, distill=tfadmm.Distill())
    tfadmm.project(wrapped)
    teacher_bn = next(layer for layer in batch_norm_layers(wrapped.teacher))
    before = np.asarray(teacher_bn.moving_mean).copy()
    xs, ys = _data([4, 4])
    expected = _brute_force(model, xs)
    assert tfadmm.recalibrate_batchnorm(wrapped, list(zip(xs, ys, strict=True))) == [
        "conv_bn", "fc1_bn"]
    np.testing.assert_allclose(np.asarray(model.get_layer("conv_bn").moving_mean),
                               expected["conv_bn"][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(teacher_bn.moving_mean), before)
