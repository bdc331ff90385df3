"""AlexNet with batch normalisation (torchvision's single-tower layout).

conv1 64@11x11/4 (pad 2) -> pool1 3/2 -> conv2 192@5x5 -> pool2 3/2 -> conv3 384@3x3 ->
conv4 256@3x3 -> conv5 256@3x3 -> pool5 3/2 -> flatten -> fc1 4096 -> fc2 4096 -> fc3.
Each conv is followed by `<conv>_bn` and ReLU; fc1 and fc2 by ReLU and dropout 0.5.
Conv and dense weights with biases: 61,100,840 for a 224x224x3 input and 1000 classes
(torchvision's AlexNet); the batch norms add 2,304 trainable parameters. Inputs must be
at least 63x63 pixels; the flattened size, and so fc1, depends on the input size.
"""

from __future__ import annotations

import keras

from tfadmm.models.layers import batch_norm


def alexnet(input_shape=(224, 224, 3), num_classes=1000, dropout=0.5):
    """Builds AlexNet-BN; the output is logits (no softmax).

    Args:
        input_shape: `(height, width, channels)`, at least 63x63.
        num_classes: units of `fc3`.
        dropout: dropout rate before fc2 and fc3.

    Returns:
        A built functional `keras.Model` named "alexnet".
    """
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.ZeroPadding2D(2, name="conv1_pad")(inputs)
    for name, filters, size, strides, pool in (
        ("conv1", 64, 11, 4, "pool1"),
        ("conv2", 192, 5, 1, "pool2"),
        ("conv3", 384, 3, 1, None),
        ("conv4", 256, 3, 1, None),
        ("conv5", 256, 3, 1, "pool5"),
    ):
        padding = "valid" if name == "conv1" else "same"
        x = keras.layers.Conv2D(filters, size, strides=strides, padding=padding, name=name)(x)
        x = batch_norm(f"{name}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=pool)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(dropout, name="fc2_dropout")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(num_classes, name="fc3")(x)
    return keras.Model(inputs, outputs, name="alexnet")
