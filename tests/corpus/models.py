"""Models that the bad-input corpus refers to (`package.module:function`)."""

import keras


def no_kernels():
    """A model without any compressible kernel."""
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(name="flatten"),
         keras.layers.Softmax(name="softmax")],
        name="no_kernels",
    )


def color_input():
    """A model for 32x32 color images (the corpus feeds it 28x28 grayscale)."""
    return keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, name="fc")],
        name="color",
    )


def with_lambda():
    """A model with a Lambda layer: its file holds Python bytecode."""
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2.0),
         keras.layers.Flatten(), keras.layers.Dense(10, name="fc")],
        name="with_lambda",
    )
