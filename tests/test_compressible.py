import keras
import pytest

from tfadmm.compressible import (
    compressible_kernels,
    find_compressible_layers,
    iter_layers,
    named_layers,
)


def _built(layer, shape):
    layer.build(shape)
    return layer


@pytest.mark.parametrize(
    "layer, shape, names",
    [
        (keras.layers.Dense(3), (None, 4), ["kernel"]),
        (keras.layers.EinsumDense("ab,bc->ac", output_shape=3), (None, 4), ["kernel"]),
        (keras.layers.Conv1D(2, 3), (None, 8, 2), ["kernel"]),
        (keras.layers.Conv2D(2, 3), (None, 8, 8, 2), ["kernel"]),
        (keras.layers.Conv3D(2, 3), (None, 4, 4, 4, 2), ["kernel"]),
        (keras.layers.Conv2DTranspose(2, 3), (None, 8, 8, 2), ["kernel"]),
        (keras.layers.DepthwiseConv2D(3), (None, 8, 8, 2), ["kernel"]),
        (keras.layers.SeparableConv2D(4, 3), (None, 8, 8, 2),
         ["depthwise_kernel", "pointwise_kernel"]),
        (keras.layers.BatchNormalization(), (None, 4), []),
        (keras.layers.Embedding(10, 4), (None, 3), []),
    ],
)
def test_builtin_layers(layer, shape, names):
    assert list(compressible_kernels(_built(layer, shape))) == names


class MyDense(keras.layers.Dense):
    pass


class Custom(keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 2))

    def call(self, x):
        return x @ self.w

    def compressible_kernels(self):
        return {"w": self.w}


def test_subclass_and_protocol():
    assert list(compressible_kernels(_built(MyDense(2), (None, 3)))) == ["kernel"]
    assert list(compressible_kernels(_built(Custom(), (None, 3)))) == ["w"]


def test_nested_models_are_walked():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="inner_fc")])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2, name="head")])
    assert list(find_compressible_layers(outer)) == ["inner_fc", "head"]


def test_layers_inside_layers_are_named_owner_slash_name():
    """Two attention layers each hold EinsumDense layers named `query`, `key`, ..."""
    inputs = keras.Input((4, 8))
    x = inputs
    for i in range(2):
        x = keras.layers.MultiHeadAttention(2, 4, name=f"block{i}_attention")(x, x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    names = list(find_compressible_layers(model))
    assert sorted(names) == sorted(
        [f"block{i}_attention/{part}" for i in range(2)
         for part in ("query", "key", "value", "attention_output")] + ["head"])
    assert [layer for _, layer in named_layers(model)] == iter_layers(model)  # Keras' order
