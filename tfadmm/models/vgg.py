"""VGG-16 for ImageNet (138,357,544 parameters at 224x224x3, 1000 classes) and for CIFAR.

Both: conv1_1, conv1_2 (64) | conv2_1, conv2_2 (128) | conv3_1..conv3_3 (256) |
conv4_1..conv4_3 (512) | conv5_1..conv5_3 (512), 3x3 "same" convs with ReLU, each block
ending in pool1..pool5 (max 2x2), then flatten.
- `vgg16`: conv biases, no batch norm; fc1 4096 -> fc2 4096 (ReLU, dropout 0.5) -> fc3.
- `vgg16_cifar`: each conv followed by `<conv>_bn` (no conv bias); fc1 512 -> fc1_bn ->
  ReLU -> dropout 0.5 -> fc2. 15.0M parameters for 32x32x3, 10 classes.
"""

from __future__ import annotations

import keras

from tfadmm.models.layers import batch_norm, conv_bn

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _features(x, *, bn):
    for block, (filters, convs) in enumerate(BLOCKS, start=1):
        for index in range(1, convs + 1):
            name = f"conv{block}_{index}"
            if bn:
                x = conv_bn(x, filters, 3, name)
            else:
                x = keras.layers.Conv2D(
                    filters, 3, padding="same", activation="relu", name=name
                )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    return keras.layers.Flatten(name="flatten")(x)


def vgg16(input_shape=(224, 224, 3), num_classes=1000, dropout=0.5):
    """Builds VGG-16 (configuration D); the output is logits.

    Args:
        input_shape: `(height, width, channels)`, at least 32x32.
        num_classes: units of `fc3`.
        dropout: dropout rate after fc1 and fc2.

    Returns:
        A built functional `keras.Model` named "vgg16".
    """
    inputs = keras.Input(input_shape, name="input")
    x = _features(inputs, bn=False)
    x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
    x = keras.layers.Dropout(dropout, name="fc2_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="fc3")(x)
    return keras.Model(inputs, outputs, name="vgg16")


def vgg16_cifar(input_shape=(32, 32, 3), num_classes=10, dropout=0.5):
    """Builds VGG-16 with batch norm and a 512-unit classifier; the output is logits.

    Args:
        input_shape: `(height, width, channels)`, at least 32x32.
        num_classes: units of `fc2`.
        dropout: dropout rate after fc1.

    Returns:
        A built functional `keras.Model` named "vgg16_cifar".
    """
    inputs = keras.Input(input_shape, name="input")
    x = _features(inputs, bn=True)
    x = keras.layers.Dense(512, use_bias=False, name="fc1")(x)
    x = batch_norm("fc1_bn")(x)
    x = keras.layers.Activation("relu", name="fc1_relu")(x)
    x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="fc2")(x)
    return keras.Model(inputs, outputs, name="vgg16_cifar")
