"""MobileNetV2 (width 1.0) for ImageNet and for CIFAR.

Layer names: stem `conv1` (3x3, 32); inverted-residual blocks `block0`..`block16`, each
`block{i}_expand` (1x1, absent in block0), `block{i}_depthwise` (3x3 DepthwiseConv2D),
`block{i}_project` (1x1, linear), each followed by `<conv>_bn`; the head `conv_head`
(1x1, 1280), `avg_pool`, `fc_dropout` and the classifier `fc`. ReLU6 throughout.
- `mobilenetv2`: stride-2 stem; 3,504,872 trainable parameters at 1000 classes (the
  `keras.applications.MobileNetV2` / torchvision count).
- `mobilenetv2_cifar`: stride 1 in the stem and in stage 2 (block1), so 32x32 inputs end
  at 4x4, as in the CIFAR-10 baselines of the papers; 2,236,682 trainable parameters at 10
  classes.
"""

from __future__ import annotations

import keras

from tfadmm.models.layers import batch_norm, conv_bn

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
CONFIG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def _inverted_residual(x, expansion, filters, strides, name):
    inputs = x
    if expansion != 1:
        x = conv_bn(x, x.shape[-1] * expansion, 1, f"{name}_expand", activation="relu6")
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_depthwise"
    )(x)
    x = batch_norm(f"{name}_depthwise_bn")(x)
    x = keras.layers.Activation("relu6", name=f"{name}_depthwise_relu6")(x)
    x = conv_bn(x, filters, 1, f"{name}_project", activation=None)
    if strides == 1 and inputs.shape[-1] == filters:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def _mobilenetv2(input_shape, num_classes, dropout, *, cifar, name):
    inputs = keras.Input(input_shape, name="input")
    x = conv_bn(inputs, 32, 3, "conv1", strides=1 if cifar else 2, activation="relu6")
    index = 0
    for stage, (expansion, filters, repeats, strides) in enumerate(CONFIG):
        if cifar and stage == 1:
            strides = 1
        for repeat in range(repeats):
            x = _inverted_residual(
                x, expansion, filters, strides if repeat == 0 else 1, f"block{index}"
            )
            index += 1
    x = conv_bn(x, 1280, 1, "conv_head", activation="relu6")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(dropout, name="fc_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name=name)


def mobilenetv2(input_shape=(224, 224, 3), num_classes=1000, dropout=0.2):
    """Builds MobileNetV2 for ImageNet-sized inputs (at least 32x32); logits out."""
    return _mobilenetv2(input_shape, num_classes, dropout, cifar=False, name="mobilenetv2")


def mobilenetv2_cifar(input_shape=(32, 32, 3), num_classes=10, dropout=0.2):
    """Builds MobileNetV2 with the CIFAR strides (stem and stage 2 at stride 1); logits out."""
    return _mobilenetv2(input_shape, num_classes, dropout, cifar=True, name="mobilenetv2_cifar")
