"""End to end: a LeNet-5-like CNN on real Fashion-MNIST, fully binary after two stages."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfadmm  # noqa: E402

DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def _lenet():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 5, name="conv1"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 5, name="conv2"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ]
    )


def _compile(model, learning_rate):
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _accuracy(model, dataset):
    model.compile(metrics=["accuracy"], loss=keras.losses.SparseCategoricalCrossentropy(True))
    return model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"]


@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason="Fashion-MNIST IDX files not installed")
def test_lenet_fully_binary_in_two_stages_stays_close_to_dense():
    keras.utils.set_random_seed(0)
    splits = tfadmm.data.load("fashion_mnist", source="idx", path=str(DATA), batch_size=64,
                              validation_split=0, take=8000)
    train, test = splits.train, splits.test
    fit = dict(verbose=0)

    model = _compile(_lenet(), 1e-3)
    model.fit(train, epochs=3, **fit)
    dense = _accuracy(model, test)

    # Stage 1: the middle layers; stage 2: the first and the last. A short run
    # needs rho to grow fast (x1.3 every 20 steps: 3e-2 -> ~3 in 3 epochs).
    stages = [("conv2", "fc1"), ("conv1", "fc2")]
    for names in stages:
        targets = {name: tfadmm.Binary(per_channel=True) for name in names}
        model = tfadmm.wrap(model, targets, rho=3e-2, update_every_steps=20)
        _compile(model, 3e-3).fit(train, epochs=3, **fit)
        tfadmm.project(model)
        _compile(model, 3e-4).fit(train, epochs=2, **fit)
    plain = tfadmm.strip(model)

    binary = _accuracy(plain, test)
    for name in LAYERS:
        kernel = keras.ops.convert_to_numpy(plain.get_layer(name).kernel)
        for channel in range(kernel.shape[-1]):  # {-a, +a} per output channel
            values = np.unique(kernel[..., channel])
            assert len(values) == 2 and values[0] == -values[1]
    assert dense > 0.75
    assert binary > 0.65, (dense, binary)
    assert binary > dense - 0.08, (dense, binary)
