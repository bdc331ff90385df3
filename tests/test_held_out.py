import keras
import numpy as np
import pytest

from tfadmm.held_out import BATCH_SIZE, as_batches, loss_and_accuracy


def _logits_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="fc")])


def test_arrays_are_cut_into_batches_of_batch_size():
    x, y = np.zeros((BATCH_SIZE + 3, 5), "float32"), np.zeros(BATCH_SIZE + 3, int)
    assert [len(b) for b, _ in as_batches((x, y))] == [BATCH_SIZE, 3]


def test_loss_and_accuracy_match_brute_force_for_logits_softmax_and_one_hot_labels():
    model = _logits_model()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype("float32"), rng.integers(0, 3, 40)
    logits = keras.ops.convert_to_numpy(model(x)).astype("float64")
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    want = (-np.log(p[np.arange(40), y]).mean(), (logits.argmax(axis=1) == y).mean())

    softmax = keras.Sequential([model, keras.layers.Softmax()])
    for m, labels in ((model, y), (softmax, y), (model, keras.utils.to_categorical(y, 3))):
        loss, accuracy = loss_and_accuracy(m, as_batches((x, labels)))
        assert loss == pytest.approx(want[0], rel=1e-5)
        assert accuracy == want[1]


def test_no_example_is_an_error():
    with pytest.raises(ValueError) as info:
        as_batches([])
    assert str(info.value) == ("Invalid `data`: expected a finite tf.data dataset or PyDataset of "
                               "(x, y) batches, or (x, y) arrays. Received: []")
