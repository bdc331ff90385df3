import keras
import numpy as np
import pytest

import tfadmm
from tfadmm.errors import ModelError
from tfadmm.surgery import shrink


def _zero_filters(layer, filters, *, bias=None):
    """Zeroes output filters of a Conv/Dense kernel; `bias` sets their bias."""
    weights = layer.get_weights()
    weights[0][..., filters] = 0
    if bias is not None and len(weights) > 1:
        weights[1][filters] = bias
    layer.set_weights(weights)


def _randomize_batch_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([
                rng.normal(size=w.shape).astype("float32") if i < 3
                else rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
                for i, w in enumerate(layer.get_weights())
            ])


def _check(model, shrunk, shape, rng, atol=1e-5):
    x = rng.normal(size=(4, *shape)).astype("float32")
    np.testing.assert_allclose(
        shrunk.predict(x, verbose=0), model.predict(x, verbose=0), atol=atol, rtol=1e-5
    )
    assert shrunk.count_params() < model.count_params()


def sequential_net():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(6, 3, name="conv2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, activation="relu", name="fc1"),
        keras.layers.Dense(3, name="fc2"),
    ])


def test_sequential_filters_go_and_outputs_stay():
    model = sequential_net()
    rng = np.random.default_rng(0)
    _zero_filters(model.get_layer("conv1"), [1, 4, 5], bias=0.3)  # constant relu(0.3), valid
    _zero_filters(model.get_layer("conv2"), [0, 2], bias=-0.2)  # constant -0.2 into Flatten
    _zero_filters(model.get_layer("fc1"), [3])
    shrunk = shrink(model)
    assert isinstance(shrunk, keras.Sequential)
    assert shrunk.get_layer("conv1").filters == 5
    assert shrunk.get_layer("conv2").filters == 4
    assert shrunk.get_layer("fc1").units == 9
    assert shrunk.get_layer("fc2").units == 3
    _check(model, shrunk, (12, 12, 3), rng)


def test_zero_input_channels_remove_the_filters_that_fed_them():
    model = sequential_net()
    rng = np.random.default_rng(1)
    conv2 = model.get_layer("conv2")
    weights = conv2.get_weights()
    weights[0][:, :, [2, 7], :] = 0  # ChannelSparsity on conv2
    conv2.set_weights(weights)
    shrunk = shrink(model)
    assert shrunk.get_layer("conv1").filters == 6
    _check(model, shrunk, (12, 12, 3), rng)


def residual_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="b_conv1")(x)
    y = keras.layers.BatchNormalization(name="b_bn1")(y)
    y = keras.layers.ReLU(name="b_relu1")(y)
    y = keras.layers.Conv2D(8, 1, use_bias=False, name="b_conv2")(y)
    y = keras.layers.BatchNormalization(name="b_bn2")(y)
    x = keras.layers.Add(name="b_add")([x, y])
    x = keras.layers.ReLU(name="b_out")(x)
    z = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Concatenate(name="cat")([x, z])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, name="fc")(x)
    return keras.Model(inputs, outputs)


def test_residual_add_batch_norm_depthwise_and_concatenate():
    model = residual_net()
    rng = np.random.default_rng(2)
    _randomize_batch_norms(model, rng)
    # b_conv1 feeds a 1x1 conv through BN + ReLU: its filters fold exactly.
    _zero_filters(model.get_layer("b_conv1"), [0, 3])
    # The Add joins stem and b_conv2: only filters zero in both members can go.
    _zero_filters(model.get_layer("stem"), [1, 2, 5])
    _zero_filters(model.get_layer("b_conv2"), [2, 5, 6])
    # b_bn2's constant output for them must be zero at the residual's 3x3 consumers:
    bn = model.get_layer("b_bn2")
    gamma, beta, mean, var = bn.get_weights()
    stem_bn = model.get_layer("stem_bn")
    s_gamma, s_beta, s_mean, s_var = stem_bn.get_weights()
    for c in (2, 5):
        beta[c] = gamma[c] * mean[c] / np.sqrt(var[c] + bn.epsilon)
        s_beta[c] = -1.0  # relu(negative) = 0 after stem_relu
    bn.set_weights([gamma, beta, mean, var])
    stem_bn.set_weights([s_gamma, s_beta, s_mean, s_var])
    shrunk = shrink(model)
    assert shrunk.get_layer("b_conv1").filters == 4
    assert shrunk.get_layer("stem").filters == 6  # 2 and 5, the intersection
    assert shrunk.get_layer("b_conv2").filters == 6
    assert shrunk.get_layer("b_bn2").get_weights()[0].shape == (6,)
    assert shrunk.get_layer("dw").get_weights()[0].shape == (3, 3, 6, 1)
    _check(model, shrunk, (8, 8, 3), rng)


def test_batch_norm_constant_folds_into_a_1x1_conv():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(5, 3, padding="same", name="a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    outputs = keras.layers.Conv2D(3, 1, use_bias=False, name="b")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    _randomize_batch_norms(model, rng)
    _zero_filters(model.get_layer("a"), [1, 4], bias=0.5)
    shrunk = shrink(model)
    assert shrunk.get_layer("a").filters == 3
    assert shrunk.get_layer("b").use_bias  # the folded constant needs a bias
    _check(model, shrunk, (6, 6, 2), rng)


def test_exact_keeps_constants_a_same_padded_conv_would_see_at_its_borders():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 7, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Conv2D(3, 3, padding="same", name="b")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(4)
    _randomize_batch_norms(model, rng)
    bn = model.get_layer("bn")
    weights = bn.get_weights()
    weights[1][:] = 5.0  # beta: every constant is positive after the ReLU
    bn.set_weights(weights)
    _zero_filters(model.get_layer("a"), [1])
    assert shrink(model).get_layer("a").filters == 4
    approximate = shrink(model, exact=False)
    assert approximate.get_layer("a").filters == 3
    x = rng.normal(size=(2, 7, 7, 2)).astype("float32")
    expected, received = model.predict(x, verbose=0), approximate.predict(x, verbose=0)
    np.testing.assert_allclose(received[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-5)
    assert not np.allclose(received, expected, atol=1e-3)  # the borders differ


def test_a_pruned_channel_into_an_unknown_layer_is_an_error():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Reshape((16,), name="reshape")(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    _zero_filters(model.get_layer("conv"), [1], bias=0.0)
    with pytest.raises(ModelError) as info:
        shrink(model)
    assert str(info.value) == (
        "Cannot shrink: a pruned channel reaches layer 'reshape', which surgery cannot "
        "slice; expected it to feed only Conv, Dense, DepthwiseConv2D, BatchNormalization, "
        "activation, pooling, Add, Concatenate or Flatten layers (or prune the filters that "
        "feed it less)."
    )


def test_subclassed_models_are_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = keras.layers.Dense(2)

        def call(self, x):
            return self.fc(x)

    model = Net()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ModelError) as info:
        shrink(model)
    assert str(info.value) == (
        "Cannot shrink model 'net': expected a Sequential model with an Input or a "
        "functional model. Received: Net"
    )


def test_strip_shrink_after_filter_sparsity():
    model = sequential_net()
    admm_model = tfadmm.wrap(model, {"conv*": tfadmm.FilterSparsity(0.5),
                                     "fc1": tfadmm.FilterSparsity(0.5)})
    masked = tfadmm.strip(admm_model)
    shrunk = tfadmm.strip(admm_model, shrink=True)
    assert shrunk is not masked
    assert [shrunk.get_layer(n).get_config().get("filters") for n in ("conv1", "conv2")] == [
        4, 3]
    assert shrunk.get_layer("fc1").units == 5
    _check(masked, shrunk, (12, 12, 3), np.random.default_rng(5))


def test_mobilenet_v2_from_keras_applications():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5
    )
    rng = np.random.default_rng(6)
    _randomize_batch_norms(model, rng)
    # Expansion convs (1x1 -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU6 -> 1x1 project):
    # a pruned expansion filter whose BN output is 0 is removed with its depthwise channel.
    pruned = 0
    for layer in model.layers:
        if layer.name.endswith("_expand"):
            _zero_filters(layer, list(range(0, layer.filters, 3)))
            bn = model.get_layer(layer.name + "_BN")
            gamma, beta, mean, var = bn.get_weights()
            beta[::3] = gamma[::3] * mean[::3] / np.sqrt(var[::3] + bn.epsilon)
            bn.set_weights([gamma, beta, mean, var])
            pruned += 1
    assert pruned > 10
    shrunk = shrink(model)
    assert shrunk.get_layer("block_1_expand").filters < model.get_layer("block_1_expand").filters
    _check(model, shrunk, (32, 32, 3), rng, atol=1e-4)
