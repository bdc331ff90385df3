"""Which weights of a model can be compressed.

A layer's compressible weights are its `kernel` (Dense, EinsumDense, every
Conv and ConvTranspose, DepthwiseConv and their subclasses), SeparableConv's
`depthwise_kernel` and `pointwise_kernel`, or whatever a custom layer returns
from the one-method protocol:

    class MyLayer(keras.layers.Layer):
        def compressible_kernels(self):
            return {"w": self.w}   # name -> keras.Variable

Biases, BatchNorm and embeddings are never compressed unless a layer says so.

Layers are named as in the model, nested models included; a layer held inside
another layer that is not a model is named `owner/name`, as Keras names its
variables: a `MultiHeadAttention` named `attention` holds the EinsumDense
layers `attention/query`, `attention/key`, `attention/value` and
`attention/attention_output`, so several attention layers stay apart.
"""

from __future__ import annotations

import collections

import keras

from tfadmm.keras_private import child_layers, flatten_layers

_KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")
#: What a targeted layer must have, for error messages.
EXPECTED = ("a layer with a `kernel` (Dense, EinsumDense, Conv*, DepthwiseConv*), "
            "`depthwise_kernel` and `pointwise_kernel` (SeparableConv*), or a "
            "`compressible_kernels()` method returning {name: keras.Variable}")


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


def named_layers(model):
    """`(name, layer)` for every layer inside `model`, depth first (as `iter_layers`).

    The name is the layer's own, or `owner/name` inside a layer that is not a
    model (module docstring).
    """
    found, seen = [], set()
    # Keras' own walk (`iter_layers`), in the same order, with the names.
    queue = collections.deque((layer, "") for layer in child_layers(model))
    while queue:
        layer, prefix = queue.popleft()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        name = prefix + layer.name
        found.append((name, layer))
        inner = "" if isinstance(layer, keras.Model) else name + "/"
        queue.extendleft((child, inner) for child in child_layers(layer))
    return found


def find_compressible_layers(model):
    """Returns `{layer_name: {kernel_name: variable}}` in model order.

    Raises:
        ValueError: if two compressible layers share a name (patterns could not
            tell them apart).
    """
    found = {}
    for name, layer in named_layers(model):
        kernels = compressible_kernels(layer)
        if not kernels:
            continue
        if name in found:
            raise ValueError(
                f"Two compressible layers are named '{name}'; give them "
                "unique names so that targets can tell them apart."
            )
        found[name] = kernels
    return found
