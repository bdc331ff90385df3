"""`reseed`: every random state of a model from one integer, for exact resumes."""

from __future__ import annotations

import keras
import numpy as np

from tfadmm.keras_private import flatten_layers, seed_generators_of


def seed_generators(model):
    """The `keras.random.SeedGenerator`s of `model` and its nested layers, in layer order.

    Dropout, GaussianNoise, random augmentation layers and any custom layer
    that keeps a generator as an attribute (Keras tracks them).
    """
    found = []
    for layer in flatten_layers(model):
        for generator in seed_generators_of(layer):
            if all(generator is not seen for seen in found):
                found.append(generator)
    return found


def reseed(model, seed):
    """Sets the state of every seed generator of `model` from `seed`, deterministically.

    Keras does not restore a generator's state from a `.keras` file (a Dropout
    layer's masks after loading depend on a seed drawn at construction), so a
    resumed run reseeds its model at every epoch from the same integer as an
    uninterrupted run: the i-th generator gets the state `[s_i, 0]`, with `s_i`
    drawn from `numpy.random.SeedSequence([seed, i])`.

    Args:
        model: a Keras model or layer.
        seed: a non-negative integer.

    Returns:
        The number of generators reseeded.

    Example:
        >>> reseed(model, 1234)  # the same Dropout masks every time
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Invalid `seed`: expected an integer >= 0. Received: seed={seed!r}")
    generators = seed_generators(model)
    for index, generator in enumerate(generators):
        # Within int32, so that the state fits every backend's seed dtype.
        value = int(np.random.SeedSequence([int(seed), index]).generate_state(1)[0]) % 2**31
        state = generator.state
        state.assign(keras.ops.convert_to_tensor([value, 0], dtype=state.dtype))
    return len(generators)
