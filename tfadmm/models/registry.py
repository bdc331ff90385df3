"""The zoo: model names to builders, `get` and `available`."""

from __future__ import annotations

from tfadmm.errors import ModelError
from tfadmm.models.alexnet import alexnet
from tfadmm.models.lenet import lenet5
from tfadmm.models.mobilenet_v2 import mobilenetv2, mobilenetv2_cifar
from tfadmm.models.resnet import (
    resnet18,
    resnet18_cifar,
    resnet20,
    resnet50,
    resnet50_cifar,
)
from tfadmm.models.vgg import vgg16, vgg16_cifar

BUILDERS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "vgg16_cifar": vgg16_cifar,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "resnet18_cifar": resnet18_cifar,
    "resnet50_cifar": resnet50_cifar,
    "resnet20": resnet20,
    "mobilenetv2": mobilenetv2,
    "mobilenetv2_cifar": mobilenetv2_cifar,
}


def available():
    """The names `get` accepts, sorted."""
    return sorted(BUILDERS)


def check_name(name):
    """Raises ModelError unless `name` is in the zoo."""
    if name not in BUILDERS:
        raise ModelError(
            f"Unknown model name: expected one of {', '.join(available())}. "
            f"Received: name={name!r}"
        )


def get(name, *, input_shape=None, num_classes=None, **kwargs):
    """Builds a zoo model, untrained; its output is logits.

    Args:
        name: one of `available()`.
        input_shape: `(height, width, channels)`; None: the model's default
            (28x28x1 LeNet-5, 32x32x3 `*_cifar` and ResNet-20, 224x224x3 ImageNet
            models).
        num_classes: output units; None: 10 (LeNet-5, `*_cifar`, ResNet-20) or 1000.
        **kwargs: further builder arguments (e.g. `dropout`).

    Returns:
        A built `keras.Model`; compile it with
        `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Raises:
        ModelError: an unknown name or invalid builder arguments.

    Example:
        >>> model = tfadmm.models.get("lenet5")
        >>> model = tfadmm.models.get("resnet18_cifar", num_classes=100)
    """
    check_name(name)
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        return BUILDERS[name](**kwargs)
    except (TypeError, ValueError) as error:
        raise ModelError(
            f"Cannot build '{name}' with {kwargs!r}: {error}"
        ) from error
