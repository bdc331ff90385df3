import itertools
import math

import keras
import numpy as np
import pytest

from tfadmm.constraints import (
    ChannelSparsity,
    FilterSparsity,
    Quantize,
    Sparsity,
    get,
    project_slices,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _brute_force(x, sparsity, axis, support=None):
    """The smallest `||x - y||^2` over every choice of kept slices (`y` = x on them)."""
    support = np.ones_like(x) if support is None else support
    x = np.moveaxis((x * support).astype("float64"), axis, 0)
    count = x.shape[0]
    keep = count - math.floor(sparsity * count)
    total = np.sum(x**2)
    return min(
        total - sum(np.sum(x[i] ** 2) for i in kept)
        for kept in itertools.combinations(range(count), keep)
    )


@pytest.mark.parametrize("shape", [(2, 2, 3, 5), (4, 6), (1, 1, 5, 4)])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.8])
def test_filters_optimal_against_brute_force(shape, sparsity):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        x = rng.normal(size=shape).astype("float32")
        y = _np(FilterSparsity(sparsity)(x))
        assert np.isclose(np.sum((x - y) ** 2), _brute_force(x, sparsity, -1), rtol=1e-5, atol=1e-5)
        zero = np.all(y.reshape(-1, shape[-1]) == 0, axis=0)
        assert zero.sum() == math.floor(sparsity * shape[-1])
        kept = ~zero
        np.testing.assert_array_equal(y[..., kept], x[..., kept])


@pytest.mark.parametrize("shape", [(2, 2, 5, 3), (6, 4)])
@pytest.mark.parametrize("sparsity", [0.2, 0.5, 0.9])
def test_channels_optimal_against_brute_force(shape, sparsity):
    rng = np.random.default_rng(len(shape))
    for _ in range(5):
        x = rng.normal(size=shape).astype("float32")
        y = _np(ChannelSparsity(sparsity)(x))
        assert np.isclose(np.sum((x - y) ** 2), _brute_force(x, sparsity, -2), rtol=1e-5, atol=1e-5)
        zero = np.all(np.moveaxis(y, -2, -1).reshape(-1, shape[-2]) == 0, axis=0)
        assert zero.sum() == math.floor(sparsity * shape[-2])


def test_optimal_with_support_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.normal(size=(3, 5)).astype("float32")
        support = (rng.random((3, 5)) > 0.4).astype("float32")
        projection = project_slices(x, 0.4, -1, support)
        y, mask = _np(projection.values), _np(projection.support)
        assert np.all(y[support == 0] == 0)
        assert np.all(mask <= support)
        assert np.isclose(np.sum((x - y) ** 2) - np.sum((x * (1 - support)) ** 2),
                          _brute_force(x, 0.4, -1, support), rtol=1e-5, atol=1e-5)


def test_a_slice_without_support_is_never_kept_over_one_with_support():
    x = np.array([[9.0, 1.0, 2.0]], "float32")
    support = np.array([[0.0, 1.0, 1.0]], "float32")
    projection = project_slices(x, 0.4, -1, support)  # keep 2 of 3
    np.testing.assert_array_equal(_np(projection.values), [[0, 1, 2]])


def test_docstring_example_and_ties_go_to_the_lower_index():
    x = np.array([[3.0, 0.1], [4.0, 0.2]], "float32")
    np.testing.assert_array_equal(_np(project_slices(x, 0.5, -1).values), [[3, 0], [4, 0]])
    ties = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(_np(FilterSparsity(0.5)(ties)), [[1, 1, 0, 0]] * 2)


def test_idempotent_and_counts_match_sparsity():
    x = np.random.default_rng(0).normal(size=(3, 3, 4, 10)).astype("float32")
    for cls in (FilterSparsity, ChannelSparsity):
        y = _np(cls(0.75)(x))
        np.testing.assert_array_equal(_np(cls(0.75)(y)), y)
    # Sparsity's convention: floor(sparsity * n) zeroed.
    assert np.sum(np.all(_np(FilterSparsity(0.75)(x)) == 0, axis=(0, 1, 2))) == 7


def test_config_round_trip_and_registry():
    for constraint in (FilterSparsity(0.5), ChannelSparsity(0.25)):
        config = keras.saving.serialize_keras_object(constraint)
        assert get(config) == constraint
        assert type(constraint).from_config(constraint.get_config()) == constraint
    assert repr(FilterSparsity(0.5)) == "FilterSparsity(sparsity=0.5)"
    assert FilterSparsity(0.5) != ChannelSparsity(0.5)
    assert FilterSparsity(0.5) != Sparsity(0.5)


def test_composes_with_quantization():
    x = np.random.default_rng(2).normal(size=(3, 3, 4, 8)).astype("float32")
    chain = FilterSparsity(0.5) & Quantize(4)
    y = _np(chain(x))
    zero = np.all(y == 0, axis=(0, 1, 2))
    assert zero.sum() == 4
    assert len(np.unique(np.abs(y[..., ~zero]))) <= 8
    restored = get(keras.saving.serialize_keras_object(chain))
    np.testing.assert_array_equal(_np(restored(x)), y)


def test_invalid_sparsity_and_shape():
    with pytest.raises(ValueError) as info:
        FilterSparsity(1.5)
    assert str(info.value) == (
        "Invalid `sparsity`: expected a number in [0, 1). Received: sparsity=1.5"
    )
    with pytest.raises(ValueError) as info:
        ChannelSparsity(0.5).check_shape((7,))
    assert str(info.value) == (
        "ChannelSparsity prunes whole input channels: expected a kernel with at least 2 "
        "dimensions (Dense (in, out), Conv (..., in, out)). Received: shape=(7,)"
    )
