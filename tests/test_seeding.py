import keras
import numpy as np
import pytest

from tfadmm.seeding import reseed, seed_generators


def _dropout_model():
    inner = keras.Sequential([keras.Input((16,)), keras.layers.Dropout(0.5, name="inner_drop")],
                             name="inner")
    return keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(16, name="fc1"), keras.layers.Dropout(0.5),
         inner, keras.layers.GaussianNoise(0.1)],
    )


def _masks(model, steps=3):
    x = np.ones((4, 16), "float32")
    return [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(steps)]


def test_finds_every_generator_including_nested_ones():
    assert len(seed_generators(_dropout_model())) == 3


def test_same_seed_same_randomness_in_another_model_instance():
    first, second = _dropout_model(), _dropout_model()
    second.set_weights(first.get_weights())
    assert reseed(first, 7) == 3 and reseed(second, 7) == 3
    for a, b in zip(_masks(first), _masks(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_another_seed_other_randomness_and_generators_differ():
    model = _dropout_model()
    reseed(model, 7)
    seven = _masks(model)
    reseed(model, 8)
    assert not np.array_equal(seven[0], _masks(model)[0])
    states = [tuple(keras.ops.convert_to_numpy(g.state)) for g in seed_generators(model)]
    assert len(set(states)) == 3


def test_a_model_without_generators_is_left_alone():
    assert reseed(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), 0) == 0


def test_error_message():
    with pytest.raises(ValueError) as error:
        reseed(_dropout_model(), -1)
    assert str(error.value) == "Invalid `seed`: expected an integer >= 0. Received: seed=-1"
