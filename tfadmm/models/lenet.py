"""LeNet-5 as in the ADMM papers (Caffe's LeNet): 430,500 weights, 431,080 parameters.

| layer | type | output (28x28x1 input) | weights |
|---|---|---|---|
| conv1 | Conv2D 20@5x5 valid | 24x24x20 | 500 |
| pool1 | MaxPooling2D 2 | 12x12x20 | |
| conv2 | Conv2D 50@5x5 valid | 8x8x50 | 25,000 |
| pool2 | MaxPooling2D 2 | 4x4x50 | |
| flatten | Flatten | 800 | |
| fc1 | Dense 500, ReLU | 500 | 400,000 |
| fc2 | Dense 10, logits | 10 | 5,000 |
"""

from __future__ import annotations

import keras


def lenet5(input_shape=(28, 28, 1), num_classes=10):
    """Builds LeNet-5; the output is logits (no softmax).

    Args:
        input_shape: `(height, width, channels)`.
        num_classes: units of `fc2`.

    Returns:
        A built functional `keras.Model` named "lenet5".
    """
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Conv2D(20, 5, name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(50, 5, name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(num_classes, name="fc2")(x)
    return keras.Model(inputs, outputs, name="lenet5")
