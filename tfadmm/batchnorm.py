"""`recalibrate_batchnorm`: re-estimate batch norms' moving statistics after hard mapping.

Hard mapping moves every kernel at once (pruned weights to zero, the others onto their
levels), so the moving mean and variance each `BatchNormalization` learned for the dense
kernels no longer describe its inputs, and inference-mode accuracy drops for a reason that
a pass over training data fixes, without any gradient step.

Semantics: the moving statistics are reset and replaced by a cumulative average over the
batches of the pass (not Keras' exponential moving average, which weighs the last ~10 batches
most at the zoo's momentum 0.9). Each batch runs the model in training mode, as `fit` does
(each batch norm normalises with its batch's statistics; dropout is active), with every batch
norm's `momentum` temporarily set to `seen / (seen + batch)`. So, with `seen` the samples
before the batch:

- `moving_mean` = the mean of the batch norm's input over every sample of the pass (the
  batch means weighted by batch size);
- `moving_variance` = the batch-size-weighted mean of the per-batch (biased) variances, the
  statistic training-mode normalisation divides by and Keras' moving average estimates too
  (PyTorch's `momentum=None` cumulative average does the same, with Bessel's correction).

The model runs eagerly (Keras reads `momentum` when it traces), one forward pass per batch.
Nothing else changes: no kernel, gamma, beta or optimizer variable is touched.
"""

from __future__ import annotations

import keras

from tfadmm.compressible import iter_layers
from tfadmm.lazy_tensorflow import INFINITE_CARDINALITY


def batch_norm_layers(model):
    """The `BatchNormalization` layers of `model` (an `ADMMModel`'s wrapped model)."""
    inner = getattr(model, "model", None)
    if isinstance(inner, keras.Model):  # an ADMMModel: not its distillation teacher
        model = inner
    return [layer for layer in iter_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batchnorm(model, data, steps=None):
    """Resets every batch norm's moving statistics and re-estimates them on `data`.

    See the module docstring for the exact statistics: the moving mean becomes the mean
    over every sample of the pass, the moving variance the mean per-batch variance, both
    computed in training mode (as during `fit`). A model without batch norms is left
    untouched; so are batch norms with `trainable=False` (Keras runs those in inference
    mode, and they keep their statistics).

    Args:
        model: a `keras.Model`, or an `ADMMModel` (its wrapped model is recalibrated,
            never the distillation teacher).
        data: an iterable of batches: `x`, or tuples `(x, y)` / `(x, y, sample_weight)`
            (a `tf.data.Dataset` as `fit` takes it).
        steps: the number of batches to use; None: all of `data`, which must be finite.

    Returns:
        The names of the batch norms recalibrated, in model order (empty: nothing to do).

    Raises:
        ValueError: `steps` not a positive integer or None, an infinite dataset without
            `steps`, `data` without a batch, or a batch norm with `renorm=True`.

    Example:
        >>> tfadmm.project(admm_model)
        >>> tfadmm.recalibrate_batchnorm(admm_model, train_ds, steps=200)
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 1):
        raise ValueError(
            f"Invalid `steps`: expected a positive integer or None. Received: steps={steps!r}"
        )
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    if not layers:
        return []
    for layer in layers:
        if layer.renorm:
            raise ValueError(
                f"Cannot recalibrate batch norm '{layer.name}' (BatchNormalization with "
                "renorm=True): expected renorm=False, whose moving statistics are plain "
                "moving averages."
            )
    if steps is None and _is_infinite(data):
        raise ValueError(
            "Cannot recalibrate batch norms on an infinite dataset without `steps`: "
            "expected a finite dataset or steps=N. Received: steps=None"
        )
    network = model.model if isinstance(getattr(model, "model", None), keras.Model) else model
    saved = [(layer, layer.momentum) for layer in layers]
    for layer in layers:
        # Shapes, not the variables: JAX's `zeros_like` takes no `keras.Variable`.
        layer.moving_mean.assign(keras.ops.zeros(layer.moving_mean.shape))
        layer.moving_variance.assign(keras.ops.ones(layer.moving_variance.shape))
    seen = 0
    try:
        for step, batch in enumerate(data):
            if steps is not None and step >= steps:
                break
            x = keras.utils.unpack_x_y_sample_weight(batch)[0]
            size = int(keras.tree.flatten(x)[0].shape[0])
            for layer in layers:
                layer.momentum = seen / (seen + size)
            network(x, training=True)
            seen += size
    finally:
        for layer, momentum in saved:
            layer.momentum = momentum
    if not seen:
        raise ValueError(
            "Cannot recalibrate batch norms: `data` yielded no batch. Expected at least one."
        )
    return [layer.name for layer in layers]


def _is_infinite(data):
    cardinality = getattr(data, "cardinality", None)
    if cardinality is None:
        return False
    try:
        return int(cardinality()) == INFINITE_CARDINALITY
    except (TypeError, ValueError):
        return False
