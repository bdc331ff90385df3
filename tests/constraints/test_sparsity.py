import itertools
import math

import keras
import numpy as np
import pytest

from tfadmm.constraints import Sparsity, get, project_sparsity, top_k_mask


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_result_is_feasible_with_exact_zero_count(sparsity):
    x = np.random.default_rng(0).normal(size=(7, 11, 3)).astype("float32")
    y = _np(Sparsity(sparsity)(x))
    assert (y == 0).sum() == math.floor(sparsity * x.size)
    assert y.shape == x.shape and y.dtype == x.dtype


def test_keeps_largest_magnitudes():
    x = np.array([[0.1, -5.0], [3.0, -0.2]], "float32")
    np.testing.assert_array_equal(_np(Sparsity(0.5)(x)), [[0, -5.0], [3.0, 0]])


def test_idempotent_and_unchanged_when_feasible():
    x = np.random.default_rng(1).normal(size=(20, 5)).astype("float32")
    c = Sparsity(0.8)
    once = _np(c(x))
    np.testing.assert_array_equal(_np(c(once)), once)


def test_optimal_against_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(20):
        x = rng.normal(size=(6,)).astype("float32")
        y = _np(Sparsity(0.5)(x))
        best = min(
            np.sum((x - np.where(np.isin(np.arange(6), keep), x, 0)) ** 2)
            for keep in itertools.combinations(range(6), 3)
        )
        assert np.isclose(np.sum((x - y) ** 2), best)


def test_ties_are_deterministic_lower_index_wins():
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(_np(Sparsity(0.5)(x)), [[1, 1, 1], [0, 0, 0]])


def test_support_keeps_earlier_zeros_and_prunes_among_survivors():
    x = np.array([9.0, 1.0, 2.0, 3.0, 8.0, 4.0], "float32")
    support = np.array([0, 1, 1, 1, 0, 1], "float32")
    result = project_sparsity(x, 0.5, support)
    np.testing.assert_array_equal(_np(result.values), [0, 0, 2, 3, 0, 4])
    np.testing.assert_array_equal(_np(result.support), [0, 0, 1, 1, 0, 1])


def test_top_k_mask_edges():
    scores = np.array([1.0, 3.0, 2.0], "float32")
    np.testing.assert_array_equal(_np(top_k_mask(scores, 0)), [0, 0, 0])
    np.testing.assert_array_equal(_np(top_k_mask(scores, 3)), [1, 1, 1])
    np.testing.assert_array_equal(_np(top_k_mask(scores, 1)), [0, 1, 0])


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, "0.5", True, None])
def test_invalid_sparsity_message(bad):
    with pytest.raises(ValueError) as info:
        Sparsity(bad)
    assert str(info.value) == (
        f"Invalid `sparsity`: expected a number in [0, 1). Received: sparsity={bad!r}"
    )


def test_config_round_trip():
    c = Sparsity(0.75)
    assert Sparsity.from_config(c.get_config()) == c
    assert get(keras.saving.serialize_keras_object(c)) == c
    assert repr(c) == "Sparsity(sparsity=0.75)"
