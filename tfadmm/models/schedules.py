"""`baseline_schedule`: how each zoo model is trained dense before compression.

These are the conventional recipes of the papers' baselines (Caffe / torchvision /
CIFAR practice); the compression stages themselves (ADMM, retraining) are configured
separately. `lr_schedule` is `{"name": "cosine"}` (to zero over `epochs`) or
`{"name": "step", "boundaries": [epochs...], "factor": f}`.
"""

from __future__ import annotations

import copy

from tfadmm.models.registry import check_name

_CIFAR = dict(
    dataset="cifar10",
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.9,
    nesterov=False,
    weight_decay=5e-4,
    batch_size=128,
    epochs=200,
    lr_schedule={"name": "cosine"},
)
_IMAGENET_STEP = dict(
    dataset="imagenet2012",
    optimizer="sgd",
    momentum=0.9,
    nesterov=False,
    batch_size=256,
    epochs=90,
    lr_schedule={"name": "step", "boundaries": [30, 60], "factor": 0.1},
)

SCHEDULES = {
    "lenet5": dict(
        dataset="mnist",
        optimizer="adam",
        learning_rate=1e-3,
        weight_decay=0.0,
        batch_size=128,
        epochs=40,
        lr_schedule={"name": "cosine"},
    ),
    "alexnet": dict(_IMAGENET_STEP, learning_rate=0.01, weight_decay=5e-4),
    "vgg16": dict(_IMAGENET_STEP, learning_rate=0.01, weight_decay=5e-4),
    "resnet18": dict(_IMAGENET_STEP, learning_rate=0.1, weight_decay=1e-4),
    "resnet50": dict(_IMAGENET_STEP, learning_rate=0.1, weight_decay=1e-4),
    "mobilenetv2": dict(
        dataset="imagenet2012",
        optimizer="sgd",
        learning_rate=0.036,
        momentum=0.9,
        nesterov=False,
        weight_decay=4e-5,
        batch_size=256,
        epochs=300,
        lr_schedule={"name": "cosine"},
    ),
    "vgg16_cifar": dict(_CIFAR),
    "resnet18_cifar": dict(_CIFAR),
    "resnet50_cifar": dict(_CIFAR),
    "mobilenetv2_cifar": dict(_CIFAR),
    # He et al. 2016, section 4.2: 64k iterations of 128 (~164 epochs), lr / 10 at 32k and 48k.
    "resnet20": dict(_CIFAR, weight_decay=1e-4, epochs=164,
                     lr_schedule={"name": "step", "boundaries": [82, 123], "factor": 0.1}),
}


def baseline_schedule(name):
    """The dense-training defaults for zoo model `name`.

    Args:
        name: one of `tfadmm.models.available()`.

    Returns:
        A new dict with `dataset`, `optimizer`, `learning_rate`, `momentum`
        (SGD only), `nesterov` (SGD only), `weight_decay`, `batch_size`,
        `epochs` and `lr_schedule`.

    Raises:
        ModelError: an unknown name.
    """
    check_name(name)
    return copy.deepcopy(SCHEDULES[name])
