import itertools

import keras
import numpy as np
import pytest

from tfadmm.constraints import NMSparsity, get, project_n_m


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_every_group_has_n_nonzeros_along_input_axis():
    x = np.random.default_rng(0).normal(size=(3, 3, 8, 5)).astype("float32")
    y = _np(NMSparsity(2, 4)(x))
    groups = np.moveaxis(y, -2, -1).reshape(-1, 4)
    assert ((groups != 0).sum(-1) == 2).all()
    assert y.shape == x.shape


def test_docstring_example():
    x = np.array([[1.0], [-3.0], [2.0], [0.5]], "float32")
    np.testing.assert_array_equal(_np(project_n_m(x, 2, 4).values), [[0], [-3], [2], [0]])


def test_optimal_against_brute_force_and_idempotent():
    rng = np.random.default_rng(1)
    c = NMSparsity(1, 3, axis=0)
    for _ in range(10):
        x = rng.normal(size=(3, 2)).astype("float32")
        y = _np(c(x))
        for col in range(2):
            best = min(
                np.sum(np.delete(x[:, col], keep) ** 2)
                for keep in itertools.combinations(range(3), 1)
            )
            assert np.isclose(np.sum((x[:, col] - y[:, col]) ** 2), best)
        np.testing.assert_array_equal(_np(c(y)), y)


def test_support_respected():
    x = np.array([[4.0], [3.0], [2.0], [1.0]], "float32")
    support = np.array([[0], [1], [1], [1]], "float32")
    np.testing.assert_array_equal(_np(project_n_m(x, 2, 4, support=support).values),
                                  [[0], [3], [2], [0]])


def test_invalid_arguments():
    with pytest.raises(ValueError) as info:
        NMSparsity(4, 4)
    assert str(info.value) == (
        "Invalid N:M sparsity: expected integers with 1 <= n < m. Received: n=4, m=4"
    )
    with pytest.raises(ValueError) as info:
        NMSparsity(2.0, 4)
    assert str(info.value) == "Invalid `n`: expected an integer. Received: n=2.0"


def test_check_shape():
    with pytest.raises(ValueError) as info:
        NMSparsity(2, 4).check_shape((6, 3))
    assert str(info.value) == (
        "N:M sparsity needs the size of axis -2 to be a multiple of m=4. Received: shape=(6, 3)"
    )


def test_config_round_trip():
    c = NMSparsity(1, 4, axis=-1)
    assert get(keras.saving.serialize_keras_object(c)) == c
    assert c.sparsity == 0.75
