"""Which layers tolerate quantization best, to order progressive stages.

`quantization_sensitivity(model, constraint, data)` quantizes each chosen layer
alone to `constraint`'s levels (its projection: round-to-nearest with the fitted
scale, no training), measures the validation loss and accuracy, and restores
the layer: forward passes only, as `tfadmm.sensitivity_curves` does for pruning.
The result ranks the layers from the least to the most sensitive; `stages(n)`
turns that ranking into `n` progressive stages' targets, each stage adding the
next least sensitive layers, so that the layers that hurt accuracy most are
quantized last (the paper's two stages put the first and last layers last).
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras

from tfadmm.allocation import select_layers
from tfadmm.constraints import Constraint
from tfadmm.held_out import as_batches, loss_and_accuracy


@dataclasses.dataclass(frozen=True)
class QuantizationSensitivity:
    """Validation loss and accuracy with one layer quantized alone.

    Attributes:
        constraint: the level set each layer was projected onto.
        base_loss: the unquantized model's validation loss.
        base_accuracy: its validation accuracy.
        loss: `{layer: loss with that layer quantized}`, in model order.
        accuracy: `{layer: accuracy with that layer quantized}`.
        seconds: how long the analysis took.
    """

    constraint: Constraint
    base_loss: float
    base_accuracy: float
    loss: dict
    accuracy: dict
    seconds: float = 0.0

    def order(self):
        """The layers from the least to the most sensitive: by the loss increase
        quantizing each alone causes (model order among equals)."""
        position = {name: i for i, name in enumerate(self.loss)}
        return sorted(self.loss, key=lambda name: (self.loss[name], position[name]))

    def stages(self, count=2):
        """`count` progressive stages' targets, `[{layer: constraint}, ...]`.

        Stage `i` quantizes the first `ceil(i * n / count)` layers of `order()`
        (the earlier stages' layers included: they stay on their levels), so the
        last stage adds the most sensitive ones. Each dict can be given to
        `tfadmm.run_stage` or `tfadmm.wrap` as it is.

        Raises:
            ValueError: `count` is not an integer in [1, number of layers].
        """
        order = self.order()
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(order):
            raise ValueError(f"Invalid `count`: expected an integer in [1, {len(order)}] (the "
                             f"layers measured). Received: count={count!r}")
        return [{name: self.constraint for name in order[:math.ceil(i * len(order) / count)]}
                for i in range(1, count + 1)]

    def to_dict(self):
        return {"constraint": keras.saving.serialize_keras_object(self.constraint),
                "base_loss": self.base_loss, "base_accuracy": self.base_accuracy,
                "loss": dict(self.loss), "accuracy": dict(self.accuracy),
                "order": self.order(), "seconds": self.seconds}


def quantization_sensitivity(model, constraint, data, *, layers=None, on_progress=None):
    """Measures each layer's validation loss and accuracy when quantized alone.

    Every chosen layer's kernels are projected onto `constraint` (weights that
    are already zero stay zero), the model evaluated on `data`, and the kernels
    restored: forward passes only; the model is left as it was.

    Args:
        model: a built Keras classifier (logits or softmax output).
        constraint: the levels, e.g. `tfadmm.Quantize(4, per_channel=True)` or
            `tfadmm.Ternary()` (any `tfadmm.Constraint` works: its projection is
            what is measured).
        data: a finite `tf.data` dataset or `PyDataset` of `(x, y)` batches, or
            `(x, y)` arrays (validation data, not the test set).
        layers: layer-name patterns; None: every compressible layer.
        on_progress: optional callable receiving one line per layer measured.

    Returns:
        `QuantizationSensitivity`; `.order()` ranks the layers, `.stages(n)`
        gives progressive targets.

    Raises:
        ValueError: `constraint` is not a constraint, no or empty `data`, or a
            pattern that matches no compressible layer.
    """
    if not isinstance(constraint, Constraint):
        raise ValueError("Invalid `constraint`: expected a tfadmm constraint such as "
                         f"tfadmm.Quantize(4). Received: constraint={constraint!r}")
    chosen = select_layers(model, layers)
    batches = as_batches(data)
    start = time.perf_counter()
    base_loss, base_accuracy = loss_and_accuracy(model, batches)
    loss, accuracy = {}, {}
    for number, (name, kernels) in enumerate(chosen.items(), 1):
        originals = {k: keras.ops.convert_to_numpy(v) for k, v in kernels.items()}
        try:
            for k, variable in kernels.items():
                support = (originals[k] != 0).astype(originals[k].dtype)
                variable.assign(constraint.project(originals[k], support).values)
            loss[name], accuracy[name] = loss_and_accuracy(model, batches)
        finally:
            for k, variable in kernels.items():
                variable.assign(originals[k])
        if on_progress is not None:
            on_progress(f"quantization sensitivity {number}/{len(chosen)}: {name} "
                        f"({time.perf_counter() - start:.1f} s)")
    return QuantizationSensitivity(constraint, base_loss, base_accuracy, loss, accuracy,
                                   time.perf_counter() - start)
