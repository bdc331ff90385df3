"""ResNet-18 / ResNet-50 for ImageNet and for CIFAR (torchvision / "ResNet v1.5" layout).

Layer names follow `keras.applications`: the stem conv is `conv1`; stages are conv2..conv5;
block b of stage s has `conv{s}_block{b}_1_conv`, `_2_conv` (and `_3_conv` in bottlenecks),
a projection shortcut `conv{s}_block{b}_0_conv` where the shape changes, each followed by
`<conv>_bn`; then `avg_pool` and the classifier `fc`. Convs have no bias.
- ImageNet (`resnet18`, `resnet50`): 7x7/2 stem + 3x3/2 max pool (`pool1`).
  Trainable parameters at 1000 classes: 11,689,512 and 25,557,032 (torchvision's counts).
- CIFAR (`resnet18_cifar`, `resnet50_cifar`): 3x3/1 stem, no max pool. Trainable
  parameters at 10 classes: 11,173,962 and 23,520,842.
Bottleneck blocks stride in their 3x3 conv (v1.5).

`resnet20`: the CIFAR ResNet-20 of He et al. 2016 (section 4.2): a 3x3/1 stem `conv1` (16
filters), three stages conv2..conv4 of three basic blocks (16, 32, 64 filters; stride 2 in the
first block of conv3 and conv4), each conv followed by `<conv>_bn`, then `avg_pool` and `fc`.
Shortcuts are the paper's option A, parameter-free: identity, or where the shape changes
(`conv{3,4}_block1`) the input subsampled by 2 (`_0_pool`, a 1x1 max pool of stride 2) and
zero-padded from C to 2C channels (`_0_pad`, between two `Permute`s: built-in layers only, so
the saved model loads without tfadmm and in safe mode). No layer has a kernel besides the 19
convs and `fc`: 268,336 kernel weights and 269,722 trainable parameters for 32x32x3 and 10
classes (the paper's "0.27M").
"""

from __future__ import annotations

import keras

from tfadmm.models.layers import conv_bn

STAGES = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}


def _block(x, filters, strides, name, kind):
    expansion = 4 if kind == "bottleneck" else 1
    shortcut = x
    if strides != 1 or x.shape[-1] != filters * expansion:
        shortcut = conv_bn(x, filters * expansion, 1, f"{name}_0_conv", strides=strides,
                           activation=None)
    if kind == "basic":
        x = conv_bn(x, filters, 3, f"{name}_1_conv", strides=strides)
        x = conv_bn(x, filters, 3, f"{name}_2_conv", activation=None)
    else:
        x = conv_bn(x, filters, 1, f"{name}_1_conv")
        x = conv_bn(x, filters, 3, f"{name}_2_conv", strides=strides)
        x = conv_bn(x, filters * expansion, 1, f"{name}_3_conv", activation=None)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _resnet(depth, input_shape, num_classes, *, cifar, name):
    kind, repeats = STAGES[depth]
    inputs = keras.Input(input_shape, name="input")
    if cifar:
        x = conv_bn(inputs, 64, 3, "conv1")
    else:
        x = conv_bn(inputs, 64, 7, "conv1", strides=2)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    widths = (64, 128, 256, 512)
    for stage, (filters, count) in enumerate(zip(widths, repeats, strict=True), start=2):
        for block in range(1, count + 1):
            strides = 2 if block == 1 and stage > 2 else 1
            x = _block(x, filters, strides, f"conv{stage}_block{block}", kind)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name=name)


def _option_a_shortcut(x, filters, name):
    """Subsample by 2 and zero-pad the channels up to `filters` (He et al.'s option A)."""
    x = keras.layers.MaxPooling2D(1, strides=2, name=f"{name}_0_pool")(x)
    extra = filters - x.shape[-1]
    # (H, W, C) -> (H, C, W): pad the channel axis as a spatial one, then back.
    x = keras.layers.Permute((1, 3, 2), name=f"{name}_0_to_channels")(x)
    x = keras.layers.ZeroPadding2D(((0, 0), (extra // 2, extra - extra // 2)),
                                   name=f"{name}_0_pad")(x)
    return keras.layers.Permute((1, 3, 2), name=f"{name}_0_from_channels")(x)


def resnet20(input_shape=(32, 32, 3), num_classes=10):
    """Builds the CIFAR ResNet-20 (He et al. 2016, option-A shortcuts); logits out.

    Args:
        input_shape: `(height, width, channels)`, e.g. 32x32x3 (CIFAR) or 28x28x1
            (Fashion-MNIST); at least 4x4.
        num_classes: units of `fc`.

    Returns:
        A built functional `keras.Model` named "resnet20".
    """
    inputs = keras.Input(input_shape, name="input")
    x = conv_bn(inputs, 16, 3, "conv1")
    for stage, filters in enumerate((16, 32, 64), start=2):
        for block in range(1, 4):
            name = f"conv{stage}_block{block}"
            strides = 2 if block == 1 and stage > 2 else 1
            shortcut = x if strides == 1 else _option_a_shortcut(x, filters, name)
            x = conv_bn(x, filters, 3, f"{name}_1_conv", strides=strides)
            x = conv_bn(x, filters, 3, f"{name}_2_conv", activation=None)
            x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
            x = keras.layers.Activation("relu", name=f"{name}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name="resnet20")


def resnet18(input_shape=(224, 224, 3), num_classes=1000):
    """Builds ResNet-18 for ImageNet-sized inputs; the output is logits."""
    return _resnet(18, input_shape, num_classes, cifar=False, name="resnet18")


def resnet50(input_shape=(224, 224, 3), num_classes=1000):
    """Builds ResNet-50 (v1.5) for ImageNet-sized inputs; the output is logits."""
    return _resnet(50, input_shape, num_classes, cifar=False, name="resnet50")


def resnet18_cifar(input_shape=(32, 32, 3), num_classes=10):
    """Builds ResNet-18 with the CIFAR stem (3x3/1 conv, no max pool); logits out."""
    return _resnet(18, input_shape, num_classes, cifar=True, name="resnet18_cifar")


def resnet50_cifar(input_shape=(32, 32, 3), num_classes=10):
    """Builds ResNet-50 with the CIFAR stem (3x3/1 conv, no max pool); logits out."""
    return _resnet(50, input_shape, num_classes, cifar=True, name="resnet50_cifar")
