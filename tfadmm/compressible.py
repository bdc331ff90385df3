"""Which weights of a model can be compressed.

A layer's compressible weights are its `kernel` (Dense, EinsumDense, every
Conv and ConvTranspose, DepthwiseConv and their subclasses), SeparableConv's
`depthwise_kernel` and `pointwise_kernel`, or whatever a custom layer returns
from the one-method protocol:

    class MyLayer(keras.layers.Layer):
        def compressible_kernels(self):
            return {"w": self.w}   # name -> keras.Variable

Biases, BatchNorm and embeddings are never compressed unless a layer says so.
"""

from __future__ import annotations

import keras

from tfadmm.keras_private import flatten_layers

_KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def compressible_kernels(layer):
    """Returns `{name: variable}` of the layer's own compressible kernels."""
    if hasattr(layer, "compressible_kernels"):
        kernels = dict(layer.compressible_kernels())
        for name, variable in kernels.items():
            if not isinstance(variable, keras.Variable):
                raise TypeError(
                    f"Layer '{layer.name}': compressible_kernels() must return "
                    "a dict of names to keras.Variable. "
                    f"Received: {name!r}: {type(variable).__name__}"
                )
        return kernels
    kernels = {}
    for name in _KERNEL_ATTRIBUTES:
        # `getattr` on a property can raise before build; treat that as absent.
        try:
            variable = getattr(layer, name, None)
        except (AttributeError, ValueError):
            variable = None
        if isinstance(variable, keras.Variable) and variable.trainable:
            kernels[name] = variable
    return kernels


def iter_layers(model):
    """Every layer inside `model`, depth first, without `model` itself."""
    return flatten_layers(model, include_self=False)


def find_compressible_layers(model):
    """Returns `{layer_name: {kernel_name: variable}}` in model order.

    Raises:
        ValueError: if two compressible layers share a name (patterns could not
            tell them apart).
    """
    found = {}
    for layer in iter_layers(model):
        kernels = compressible_kernels(layer)
        if not kernels:
            continue
        if layer.name in found:
            raise ValueError(
                f"Two compressible layers are named '{layer.name}'; give them "
                "unique names so that targets can tell them apart."
            )
        found[layer.name] = kernels
    return found
