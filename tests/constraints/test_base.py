import keras
import numpy as np
import pytest

from tfadmm.constraints import Chain, NMSparsity, Sparsity, get


def test_chain_applies_second_to_survivors_of_first():
    x = np.array([[4.0], [-3.0], [2.0], [1.0], [0.5], [6.0], [0.1], [0.2]], "float32")
    chain = Sparsity(0.5) & NMSparsity(1, 4, axis=0)
    assert isinstance(chain, Chain)
    y = keras.ops.convert_to_numpy(chain(x))
    np.testing.assert_array_equal(y.ravel(), [4, 0, 0, 0, 0, 6, 0, 0])


def test_chain_round_trips_through_serialization():
    chain = Sparsity(0.9) & NMSparsity(2, 4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(chain))
    assert restored == chain
    assert repr(restored) == "Sparsity(sparsity=0.9) & NMSparsity(n=2, m=4, axis=-2)"


def test_get_rejects_unknown_identifiers():
    with pytest.raises(ValueError) as info:
        get("pruning")
    assert str(info.value) == (
        "Could not interpret a tfadmm constraint: expected a tfadmm.Constraint "
        "(e.g. tfadmm.Sparsity(0.9)), its serialized config, or the name of one "
        "that takes no arguments. Received: 'pruning'"
    )


@pytest.mark.parametrize("name", ["sparsity", "Quantize"])
def test_get_rejects_names_of_constraints_that_need_arguments(name):
    with pytest.raises(ValueError) as info:
        get(name)
    assert str(info.value).endswith(f"that takes no arguments. Received: {name!r}")
