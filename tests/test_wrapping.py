import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfadmm


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (x[:, :3].argmax(1)).astype("int64")


def _sequential():
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="fc1"),
            keras.layers.Dense(3, name="fc2"),
        ]
    )


def _functional():
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="fc1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc2")(h))


@keras.saving.register_keras_serializable(package="tests")
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc1 = keras.layers.Dense(16, activation="relu", name="fc1")
        self.fc2 = keras.layers.Dense(3, name="fc2")

    def call(self, x):
        return self.fc2(self.fc1(x))


def _subclassed():
    model = Subclassed()
    model(np.zeros((1, 8), "float32"))
    return model


def _compile(model, optimizer=None):
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _zeros(model):
    return {name: float(np.mean(k == 0)) for name, k in _kernels(model).items()}


def _kernels(model):
    return {
        layer.name: keras.ops.convert_to_numpy(layer.kernel)
        for layer in model._flatten_layers(include_self=False)
        if hasattr(layer, "kernel")
    }


@pytest.mark.parametrize("build", [_sequential, _functional, _subclassed])
def test_contract_on_every_kind_of_model(build):
    x, y = _data()
    admm = tfadmm.wrap(build(), {"fc1": tfadmm.Sparsity(0.75), "fc*": tfadmm.Sparsity(0.5)})
    _compile(admm)
    logs = admm.fit(x, y, epochs=2, batch_size=32, verbose=0).history
    assert {"admm_penalty", "admm_rho", "fc1_residual", "fc2_residual", "loss"} <= set(logs)
    tfadmm.project(admm)
    admm.fit(x, y, epochs=2, batch_size=32, verbose=0)
    plain = tfadmm.strip(admm)
    assert not isinstance(plain, tfadmm.ADMMModel)
    assert _zeros(plain) == {"fc1": 0.75, "fc2": 0.5}


def test_rho_grows_four_times_an_epoch_by_default():
    x, y = _data(n=100)
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.5)}, rho=0.01))
    admm.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    assert int(admm.update_interval.numpy()) == 2  # (80 / 8 steps) // 4
    assert int(admm.admm_step.numpy()) == 30
    assert np.isclose(admm.rho.numpy(), 0.01 * 1.07**15)


def test_updates_per_epoch_spreads_the_updates_over_each_epoch():
    x, y = _data(n=100)
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.5)}, rho=0.01,
                                rho_multiplier=1.3, updates_per_epoch=1))
    admm.fit(x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0)
    assert int(admm.update_interval.numpy()) == 3  # ceil(80 / 32)
    assert np.isclose(admm.rho.numpy(), 0.01 * 1.3**3)


def test_update_every_steps_and_rho_max_with_a_dataset():
    x, y = _data(n=64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    admm = tfadmm.wrap(
        _sequential(), {"fc*": tfadmm.Sparsity(0.5)},
        rho=1.0, rho_multiplier=2.0, rho_max=3.0, update_every_steps=2,
    )
    _compile(admm).fit(ds, epochs=2, verbose=0)
    assert int(admm.admm_step.numpy()) == 8
    assert np.isclose(admm.rho.numpy(), 3.0)
    state = admm.kernels[0]
    assert float(state.dual_residual.numpy()) >= 0


def test_z_stays_in_the_set_and_u_tracks_w_minus_z_rescaled_as_rho_grows():
    x, y = _data()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc1": tfadmm.Sparsity(0.75)},
                                rho_multiplier=2.0))
    admm.fit(x, y, epochs=2, batch_size=32, verbose=0)
    state, w = admm.pairs()[0]
    z = state.z.numpy()
    assert np.mean(z == 0) == 0.75
    u, weights, rho = state.u.numpy(), keras.ops.convert_to_numpy(w), float(admm.rho.numpy())
    assert np.any(u != 0)  # the fit's updates moved U
    # One more update: Z = Proj(W + U), U += W - Z, then rho doubles and U halves.
    admm.admm_update()
    z_new, u_new = state.z.numpy(), state.u.numpy()
    np.testing.assert_allclose(z_new, keras.ops.convert_to_numpy(
        tfadmm.Sparsity(0.75)(weights + u)), rtol=1e-6)
    assert np.isclose(admm.rho.numpy(), 2 * rho)
    np.testing.assert_allclose(u_new, (u + weights - z_new) / 2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        lambda: keras.optimizers.Adam(1e-2),
        lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.5),
        lambda: keras.optimizers.AdamW(
            keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5), weight_decay=0.1
        ),
    ],
    ids=["sgd-momentum", "adam", "adamw", "adamw-schedule"],
)
def test_pruned_weights_stay_exactly_zero_whatever_the_optimizer(optimizer):
    x, y = _data()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.9)}), optimizer())
    admm.fit(x, y, epochs=1, batch_size=32, verbose=0)
    tfadmm.project(admm)
    pruned = {k: v == 0 for k, v in _kernels(admm.model).items()}
    before = _kernels(admm.model)
    # A fresh optimizer for retraining, as the papers do; momentum builds up on purpose.
    _compile(admm, optimizer()).fit(x, y, epochs=3, batch_size=16, verbose=0)
    after = _kernels(admm.model)
    for name, mask in pruned.items():
        assert (after[name][mask] == 0).all()
        assert not np.array_equal(after[name][~mask], before[name][~mask])


@pytest.mark.parametrize(
    ("targets", "check"),
    [
        ({"fc1": tfadmm.Sparsity(0.75)}, lambda w: (w == 0).sum() == int(0.75 * w.size)),
        ({"fc1": tfadmm.Binary()}, lambda w: len(np.unique(w)) == 2),
    ],
    ids=["sparsity", "binary"],
)
def test_ema_optimizers_keep_the_masks(targets, check):
    # Keras copies the averaged weights back at the end of `fit`, after the
    # training step's re-masking: the unstripped model must still be compressed,
    # with the ADMM phase's optimizer (the README's flow) or a fresh one.
    x, y = _data()
    for fresh in (False, True):
        admm = _compile(tfadmm.wrap(_sequential(), targets),
                        keras.optimizers.AdamW(1e-2, use_ema=True))
        admm.fit(x, y, epochs=2, batch_size=16, verbose=0)
        tfadmm.project(admm)
        if fresh:
            _compile(admm, keras.optimizers.AdamW(1e-2, use_ema=True))
        admm.fit(x, y, epochs=1, batch_size=16, verbose=0)
        assert check(_kernels(admm.model)["fc1"])


def test_progressive_wrap_keeps_earlier_zeros():
    x, y = _data()
    model = _sequential()
    admm = _compile(tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)}))
    admm.fit(x, y, epochs=1, batch_size=32, verbose=0)
    first = {k: v == 0 for k, v in _kernels(tfadmm.strip(admm)).items()}
    stage2 = _compile(tfadmm.wrap(admm.model, {"fc*": tfadmm.Sparsity(0.8)}))
    stage2.fit(x, y, epochs=2, batch_size=32, verbose=0)
    second = _kernels(tfadmm.strip(stage2))
    for name, zeros in first.items():
        assert (second[name][zeros] == 0).all()
        assert (second[name] == 0).sum() == int(0.8 * second[name].size)


def test_rewrapping_holds_kernels_of_the_earlier_stage():
    x, y = _data()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc1": tfadmm.Sparsity(0.75)}))
    admm.fit(x, y, epochs=1, batch_size=32, verbose=0)
    tfadmm.project(admm)
    fc1_zeros = _kernels(admm.model)["fc1"] == 0
    stage2 = _compile(tfadmm.wrap(admm, {"fc2": tfadmm.Sparsity(0.5)}))
    assert [(k.label, k.active) for k in stage2.kernels] == [("fc2", True), ("fc1", False)]
    stage2.fit(x, y, epochs=2, batch_size=32, verbose=0)
    tfadmm.project(stage2)
    stage2.fit(x, y, epochs=1, batch_size=32, verbose=0)
    kernels = _kernels(stage2.model)
    assert (kernels["fc1"][fc1_zeros] == 0).all() and np.mean(kernels["fc1"] == 0) == 0.75
    assert np.mean(kernels["fc2"] == 0) == 0.5


def test_freeze_holds_a_kernel_exactly():
    x, y = _data()
    model = _sequential()
    fc1 = _kernels(model)["fc1"]
    admm = tfadmm.wrap(model, {"fc2": tfadmm.Sparsity(0.5)}, freeze=["fc1"])
    _compile(admm).fit(x, y, epochs=2, batch_size=32, verbose=0)
    np.testing.assert_array_equal(_kernels(model)["fc1"], fc1)


def test_mid_admm_keras_round_trip_continues_exactly(tmp_path):
    x, y = _data()
    kwargs = dict(epochs=1, batch_size=32, shuffle=False, verbose=0)
    admm = _compile(
        tfadmm.wrap(_functional(), {"fc*": tfadmm.Sparsity(0.7)}, update_every_steps=2),
        keras.optimizers.AdamW(1e-2, weight_decay=0.01),
    )
    admm.fit(x, y, **kwargs)
    path = tmp_path / "mid.keras"
    admm.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, tfadmm.ADMMModel) and loaded.phase == "admm"
    admm.fit(x, y, **kwargs)
    loaded.fit(x, y, **kwargs)
    for a, b in zip(admm.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert np.isclose(admm.rho.numpy(), loaded.rho.numpy())


def test_retrain_phase_round_trip(tmp_path):
    x, y = _data()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.7)}))
    admm.fit(x, y, epochs=1, batch_size=32, verbose=0)
    tfadmm.project(admm)
    admm.save(tmp_path / "retrain.keras")
    loaded = keras.models.load_model(tmp_path / "retrain.keras")
    assert loaded.phase == "retrain"
    logs = loaded.fit(x, y, epochs=1, batch_size=32, verbose=0).history
    assert "admm_penalty" not in logs
    assert _zeros(loaded.model) == {"fc1": 89 / 128, "fc2": 33 / 48}  # floor(0.7 * size)


def test_stripped_model_loads_without_tfadmm_classes(tmp_path):
    x, y = _data()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.5)}))
    admm.fit(x, y, epochs=1, batch_size=32, verbose=0)
    plain = tfadmm.strip(admm)  # projects: still in the ADMM phase
    plain.save(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as archive:
        assert "tfadmm" not in archive.read("config.json").decode()
    loaded = keras.models.load_model(tmp_path / "plain.keras")
    assert _zeros(loaded) == {"fc1": 0.5, "fc2": 0.5}


def test_get_config_round_trip():
    admm = tfadmm.wrap(
        _sequential(), {"fc*": tfadmm.Sparsity(0.5)}, rho=0.01, rho_multiplier=1.5, rho_max=1.0,
        update_every_steps=7, updates_per_epoch=2,
    )
    config = admm.get_config()
    json.dumps(config)
    clone = tfadmm.ADMMModel.from_config(config)
    assert clone.get_config() == config
    del config["updates_per_epoch"]  # saved before the option existed: once an epoch
    assert tfadmm.ADMMModel.from_config(config).updates_per_epoch == 1
    state = admm.kernels[0]
    assert tfadmm.KernelState.from_config(state.get_config()).get_config() == state.get_config()


def _error(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_wrap_errors():
    model = _sequential()
    assert _error(lambda: tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)}, rho=0)) == (
        "Invalid `rho`: expected a number > 0. Received: rho=0"
    )
    assert _error(
        lambda: tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)}, rho_multiplier=0.5)
    ) == "Invalid `rho_multiplier`: expected a number >= 1. Received: rho_multiplier=0.5"
    assert _error(
        lambda: tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)}, update_every_steps=0)
    ) == (
        "Invalid `update_every_steps`: expected a positive integer or None "
        "(`updates_per_epoch` updates an epoch). Received: update_every_steps=0"
    )
    assert _error(
        lambda: tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)}, updates_per_epoch=0.5)
    ) == (
        "Invalid `updates_per_epoch`: expected a positive integer. "
        "Received: updates_per_epoch=0.5"
    )
    unbuilt = keras.Sequential([keras.layers.Dense(2)], name="unbuilt")
    assert _error(lambda: tfadmm.wrap(unbuilt, {"*": tfadmm.Sparsity(0.5)})) == (
        "Model 'unbuilt' is not built: call it on a batch or call model.build(input_shape) "
        "before tfadmm.wrap()."
    )
    admm = tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.5)})
    assert _error(lambda: tfadmm.wrap(admm, {"fc1": tfadmm.Sparsity(0.9)})) == (
        "The model is still in its ADMM phase: call tfadmm.project(model) to finish that "
        "stage before wrapping it for the next one."
    )
    assert _error(lambda: tfadmm.project(model)) == (
        "tfadmm.project() expects a model returned by tfadmm.wrap(). Received: Sequential"
    )


def test_per_epoch_update_needs_a_known_epoch_length():
    x, y = _data(n=32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    admm = _compile(tfadmm.wrap(_sequential(), {"fc*": tfadmm.Sparsity(0.5)}))
    assert _error(lambda: admm.fit(ds, epochs=1, verbose=0)) == (
        "Cannot tell how many steps an epoch has, to spread the Z/U updates over it: "
        "pass `steps_per_epoch` to fit(), or `update_every_steps` to tfadmm.wrap(). "
        "Received: a tf.data.Dataset of infinite cardinality"
    )
    admm.fit(ds, epochs=1, steps_per_epoch=8, verbose=0)
    assert int(admm.update_interval.numpy()) == 2
