import keras
import pytest

from tfadmm.constraints import NMSparsity, Sparsity
from tfadmm.targets import resolve_targets


def _model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(6, name="fc1"),
            keras.layers.Dense(2, name="fc2"),
        ]
    )


def test_exact_name_wins_over_patterns_then_first_pattern():
    resolved = resolve_targets(
        _model(), {"fc*": Sparsity(0.5), "fc2": Sparsity(0.9), "*": Sparsity(0.1)}
    )
    assert {k[0]: c.sparsity for k, (c, _) in resolved.items()} == {
        "conv1": 0.1, "fc1": 0.5, "fc2": 0.9,
    }


def _message(model, targets):
    with pytest.raises(ValueError) as info:
        resolve_targets(model, targets)
    return str(info.value)


def test_pattern_matching_nothing():
    assert _message(_model(), {"dense*": Sparsity(0.5)}) == (
        "targets['dense*']: the pattern matches no compressible layer. "
        "Compressible layers: conv1, fc1, fc2"
    )


def test_layer_without_kernel():
    assert _message(_model(), {"pool1": Sparsity(0.5)}) == (
        "targets['pool1']: layer 'pool1' (MaxPooling2D) has no compressible kernel: expected a "
        "layer with a `kernel` (Dense, EinsumDense, Conv*, DepthwiseConv*), `depthwise_kernel` "
        "and `pointwise_kernel` (SeparableConv*), or a `compressible_kernels()` method "
        "returning {name: keras.Variable}. Compressible layers: conv1, fc1, fc2"
    )


def test_pattern_matching_only_layers_without_a_kernel_names_them():
    assert _message(_model(), {"*l*": Sparsity(0.5)}) == (
        "targets['*l*']: the pattern matches no compressible layer, only layers without one: "
        "'pool1' (MaxPooling2D), 'flatten' (Flatten); expected a layer with a `kernel` (Dense, "
        "EinsumDense, Conv*, DepthwiseConv*), `depthwise_kernel` and `pointwise_kernel` "
        "(SeparableConv*), or a `compressible_kernels()` method returning "
        "{name: keras.Variable}. Compressible layers: conv1, fc1, fc2"
    )


def test_unknown_layer():
    assert _message(_model(), {"fc3": Sparsity(0.5)}) == (
        "targets['fc3']: the model has no layer named 'fc3'. "
        "Compressible layers: conv1, fc1, fc2"
    )


def test_bad_constraint_and_shape():
    assert _message(_model(), {"fc1": 0.5}).startswith(
        "targets['fc1']: Could not interpret a tfadmm constraint"
    )
    assert _message(_model(), {"fc2": NMSparsity(2, 4)}) == (
        "targets['fc2']: cannot apply NMSparsity(n=2, m=4, axis=-2) to fc2.kernel: "
        "N:M sparsity needs the size of axis -2 to be a multiple of m=4. Received: shape=(6, 2)"
    )


def test_targets_must_be_a_dict():
    assert _message(_model(), []) == (
        "`targets` must be a non-empty dict of layer-name patterns to constraints, "
        "e.g. {'fc*': tfadmm.Sparsity(0.9)}. Received: []"
    )
