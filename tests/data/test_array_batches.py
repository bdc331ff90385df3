import keras
import numpy as np
import pytest

from tfadmm.data.array_batches import ArrayBatches


def _data(rows=10):
    return np.arange(rows * 4, dtype=np.uint8).reshape(rows, 2, 2, 1), np.arange(rows)


def _scale(images, rng):
    return images.astype(np.float32) / 2


def _labels(batches):
    return [list(batches[i][1]) for i in range(len(batches))]


def test_batches_in_stored_order_without_a_seed():
    x, y = _data()
    batches = ArrayBatches(x, y, batch_size=4, preprocess=_scale)
    assert len(batches) == 3
    assert _labels(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    images, _ = batches[2]
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, x[8:] / 2)


def test_a_seed_shuffles_each_epoch_anew_and_the_same_on_every_run():
    x, y = _data()
    batches = ArrayBatches(x, y, batch_size=4, preprocess=_scale, seed=3)
    batches.on_epoch_begin()  # the first epoch: the order the dataset was made with
    first = _labels(batches)
    assert sorted(sum(first, [])) == list(range(10)) and first != _labels(
        ArrayBatches(x, y, batch_size=4, preprocess=_scale))
    batches.on_epoch_begin()
    second = _labels(batches)
    assert sorted(sum(second, [])) == list(range(10)) and second != first
    again = ArrayBatches(x, y, batch_size=4, preprocess=_scale, seed=3)
    assert _labels(again) == first
    images, labels = again[0]
    np.testing.assert_array_equal(images, x[labels] / 2)  # images stay with their labels


def test_the_preprocessing_rng_depends_on_seed_epoch_and_batch_only():
    x, y = _data()

    def draw(images, rng):
        return np.full(len(images), rng.random(), np.float32)

    a = ArrayBatches(x, y, batch_size=5, preprocess=draw, seed=1)
    b = ArrayBatches(x, y, batch_size=5, preprocess=draw, seed=1)
    assert b[1][0][0] == a[1][0][0] != a[0][0][0]  # read out of order: the same numbers
    epoch_0 = a[0][0][0]
    a.on_epoch_begin()
    a.on_epoch_begin()
    assert a[0][0][0] != epoch_0


def test_fit_and_evaluate_take_it():
    x, y = _data(12)
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(12)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = ArrayBatches(x, y, batch_size=4, preprocess=_scale, seed=0)
    history = model.fit(batches, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and batches.epoch == 1
    assert np.isfinite(model.evaluate(batches, verbose=0))


@pytest.mark.parametrize("index", [-1, 3])
def test_an_index_out_of_range(index):
    x, y = _data()
    with pytest.raises(IndexError) as info:
        ArrayBatches(x, y, batch_size=4, preprocess=_scale)[index]
    assert str(info.value) == (
        f"ArrayBatches has 3 batches: expected an index in [0, 3). Received: {index}"
    )


def test_images_and_labels_must_match():
    x, y = _data()
    with pytest.raises(ValueError) as info:
        ArrayBatches(x, y[:9], batch_size=4, preprocess=_scale)
    assert str(info.value) == (
        "ArrayBatches: images and labels differ in count. Received: 10 images, 9 labels."
    )
