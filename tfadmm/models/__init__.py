"""The papers' model zoo, and loading users' models.

Every zoo model outputs logits: train with
`keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

Layer names recipes can target (glob patterns as in `tfadmm.wrap`):

| model | convs | dense |
|---|---|---|
| lenet5 | conv1, conv2 | fc1, fc2 |
| alexnet | conv1 .. conv5 | fc1, fc2, fc3 |
| vgg16 | conv1_1 .. conv5_3 | fc1, fc2, fc3 |
| vgg16_cifar | conv1_1 .. conv5_3 | fc1, fc2 |
| resnet18, resnet50, *_cifar | conv1, conv{2..5}_block{b}_{0..3}_conv | fc |
| resnet20 | conv1, conv{2..4}_block{1..3}_{1,2}_conv | fc |
| mobilenetv2, mobilenetv2_cifar | conv1, block{i}_expand / _depthwise / _project, conv_head | fc |

Batch norms are named `<conv>_bn` (never compressed). ResNet-20's shortcuts hold no weights
(option A), so `conv*_block*` is every conv but the stem `conv1`, and `conv*` adds it.
See each module's docstring.
"""

from tfadmm.models.loading import load
from tfadmm.models.registry import available, get
from tfadmm.models.schedules import baseline_schedule

__all__ = ["available", "baseline_schedule", "get", "load"]
