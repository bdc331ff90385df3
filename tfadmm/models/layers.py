"""Small named building blocks shared by the zoo's definitions."""

from __future__ import annotations

import keras

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def conv_bn(x, filters, kernel_size, name, *, strides=1, activation="relu", use_bias=False):
    """`Conv2D` named `name`, then `BatchNormalization` named `name + "_bn"`, then activation."""
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name
    )(x)
    x = keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def batch_norm(name):
    """A `BatchNormalization` with the zoo's (PyTorch-like) momentum and epsilon."""
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)
