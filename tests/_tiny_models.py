"""Tiny models for the report, export, callback and CLI tests."""

import keras
import numpy as np

import tfadmm


def dense_model(hidden=32):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6,), name="features"),
            keras.layers.Dense(hidden, activation="relu", name="fc1"),
            keras.layers.Dense(3, name="fc2"),
        ],
        name="tiny",
    )


def pruned(hidden=32, targets=None):
    """`(admm_model, plain_model)`: the dense model pruned to 90 % by tfadmm."""
    admm_model = tfadmm.wrap(dense_model(hidden), targets or {"fc*": tfadmm.Sparsity(0.9)})
    return admm_model, tfadmm.strip(admm_model)


def ternary_conv_model():
    """A conv model whose kernels are hand-quantized to {-0.25, 0, 0.25}."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, name="fc1"),
        ],
        name="ternary",
    )
    for layer in (model.get_layer("conv1"), model.get_layer("fc1")):
        w = keras.ops.convert_to_numpy(layer.kernel)
        scale = np.abs(w).mean()
        layer.kernel.assign(np.where(w > scale, 0.25, np.where(w < -scale, -0.25, 0.0)))
    return model


def batch(shape, rows=5, seed=1):
    return np.random.default_rng(seed).normal(size=(rows, *shape)).astype("float32")


def dropout_mlp():
    """A small Fashion-MNIST classifier with Dropout (its masks need seeding on resume)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, name="fc2"),
        ],
        name="dropout_mlp",
    )


def small_classifier():
    """conv1 / fc1 / fc2 on 8x8x1 inputs, 4 classes (the analyses' tests)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(4, name="fc2"),
        ],
        name="small",
    )


def classifier_data(rows=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 8, 8, 1)).astype("float32"), rng.integers(0, 4, rows)
