"""The models users have: `keras.applications` and a Transformer encoder, end to end.

Each goes through the whole contract: `wrap` with pattern targets, a few ADMM steps on
random data, `project`, a step of masked retraining, `strip`, a `.keras` round trip, and
a compact SavedModel whose served outputs equal Keras'; masks hold exactly throughout.
The `keras.applications` models take minutes each on a busy CPU (`-m slow`); the
Transformer encoder runs in the default suite.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfadmm
from tfadmm.stage import compile_classifier

CLASSES = 4


def _random_data(input_shape, rows=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(rows, *input_shape)).astype("float32")
    return x, rng.integers(0, CLASSES, size=(rows,))


def _masks_hold(wrapped):
    """Every frozen weight sits exactly at its held value; pruned kernels keep their count."""
    for state, variable in wrapped.pairs():
        w = keras.ops.convert_to_numpy(variable)
        held = keras.ops.convert_to_numpy(state.mask) == 0
        np.testing.assert_array_equal(w[held], keras.ops.convert_to_numpy(state.z)[held])
        sparsity = getattr(state.constraint, "sparsity", None)
        if sparsity is not None:
            assert np.count_nonzero(w) == w.size - int(sparsity * w.size), state.layer_name


def contract(model, targets, tmp_path, *, expect=None):
    """The contract every model meets; returns the stripped model."""
    x, y = _random_data(model.input_shape[1:])
    keras.utils.set_random_seed(0)
    wrapped = tfadmm.wrap(model, targets, update_every_steps=2)
    if expect is not None:
        assert sorted(state.layer_name for state, _ in wrapped.pairs()) == sorted(expect)
    compile_classifier(wrapped, keras.optimizers.Adam(1e-3), jit_compile=False)
    wrapped.fit(x, y, batch_size=4, epochs=1, verbose=0)  # ADMM: 2 steps, 1 Z/U update
    tfadmm.project(wrapped)
    _masks_hold(wrapped)
    compile_classifier(wrapped, keras.optimizers.Adam(1e-3), jit_compile=False)
    wrapped.fit(x, y, batch_size=8, epochs=1, verbose=0)  # one step of masked retraining
    _masks_hold(wrapped)

    plain = tfadmm.strip(wrapped)
    expected = keras.ops.convert_to_numpy(plain(x, training=False))
    plain.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(x, training=False), expected, rtol=1e-5, atol=1e-5)

    result = tfadmm.export(plain, tmp_path / "savedmodel", measure_dense=False)
    (serving_input,) = result.inputs
    serve = tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["serving_default"]
    served = next(iter(serve(**{serving_input.name: tf.constant(x)}).values())).numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
    return plain


# -- a Transformer encoder: MultiHeadAttention, EinsumDense, LayerNormalization ------------


def transformer_encoder(sequence=6, features=8, width=16, heads=2, blocks=2):
    """Two post-norm encoder blocks; the attention layers' EinsumDense are `<block>_attention/*`."""
    inputs = keras.Input((sequence, features), name="tokens")
    x = keras.layers.Dense(width, name="embed")(inputs)
    for i in range(blocks):
        name = f"block{i}"
        attention = keras.layers.MultiHeadAttention(heads, width // heads,
                                                    name=f"{name}_attention")(x, x)
        x = keras.layers.LayerNormalization(name=f"{name}_ln1")(x + attention)
        h = keras.layers.EinsumDense("abc,cd->abd", (None, 2 * width), activation="relu",
                                     bias_axes="d", name=f"{name}_ffn1")(x)
        h = keras.layers.EinsumDense("abd,dc->abc", (None, width), bias_axes="c",
                                     name=f"{name}_ffn2")(h)
        x = keras.layers.LayerNormalization(name=f"{name}_ln2")(x + h)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="fc")(x), name="encoder")


def test_transformer_encoder(tmp_path):
    keras.utils.set_random_seed(0)
    attention = [f"block{i}_attention/{part}" for i in range(2)
                 for part in ("query", "key", "value", "attention_output")]
    contract(
        transformer_encoder(),
        {"block*_attention/*": tfadmm.Sparsity(0.5), "block*_ffn*": tfadmm.Sparsity(0.75),
         "fc": tfadmm.Quantize(4, per_channel=True)},
        tmp_path,
        expect=attention + ["block0_ffn1", "block0_ffn2", "block1_ffn1", "block1_ffn2", "fc"],
    )


def test_layer_norms_are_not_compressible():
    with pytest.raises(ValueError) as info:
        tfadmm.wrap(transformer_encoder(), {"*_ln*": tfadmm.Sparsity(0.5)})
    assert str(info.value).startswith(
        "targets['*_ln*']: the pattern matches no compressible layer, only layers without one: "
        "'block0_ln1' (LayerNormalization), 'block0_ln2' (LayerNormalization), 'block1_ln1' "
        "(LayerNormalization), 'block1_ln2' (LayerNormalization); expected a layer with a "
        "`kernel` (Dense, EinsumDense, Conv*, DepthwiseConv*)")
    with pytest.raises(ValueError) as info:
        tfadmm.wrap(transformer_encoder(), {"block0_attention": tfadmm.Sparsity(0.5)})
    assert str(info.value).startswith(
        "targets['block0_attention']: layer 'block0_attention' (MultiHeadAttention) has no "
        "compressible kernel: expected a layer with a `kernel`")


# -- keras.applications ----------------------------------------------------------------------


def _application(name, input_shape=(32, 32, 3)):
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(weights=None, input_shape=input_shape,
                                             classes=CLASSES)


@pytest.mark.slow
def test_mobilenet_v3_small(tmp_path):
    """Depthwise convs (`*_depthwise`, a DepthwiseConv2D's `kernel`) and squeeze-excitation."""
    plain = contract(
        _application("MobileNetV3Small"),
        {"*depthwise": tfadmm.Sparsity(0.3), "expanded_conv_*": tfadmm.Sparsity(0.6),
         "logits": tfadmm.Quantize(4, per_channel=True)},
        tmp_path,
    )
    kernel = keras.ops.convert_to_numpy(plain.get_layer("expanded_conv_depthwise").kernel)
    assert np.count_nonzero(kernel) == kernel.size - int(0.3 * kernel.size)


@pytest.mark.slow
def test_efficientnet_b0(tmp_path):
    """Squeeze-excitation (`*_se_reduce`, `*_se_expand`), depthwise and 1x1 convs, the head."""
    contract(
        _application("EfficientNetB0"),
        {"*_se_*": tfadmm.Sparsity(0.5), "*dwconv*": tfadmm.Sparsity(0.3),
         "*conv": tfadmm.Sparsity(0.6), "predictions": tfadmm.Quantize(8, per_channel=True)},
        tmp_path,
    )


@pytest.mark.slow
def test_resnet50_v2(tmp_path):
    contract(_application("ResNet50V2"),
             {"conv*_conv": tfadmm.Sparsity(0.7), "predictions": tfadmm.Sparsity(0.5)},
             tmp_path)


@pytest.mark.slow
def test_convnext_tiny(tmp_path):
    """Grouped (depthwise) Conv2D, pointwise Dense layers; LayerScale is not compressible."""
    model = _application("ConvNeXtTiny")
    with pytest.raises(ValueError) as info:
        tfadmm.wrap(model, {"*layer_scale": tfadmm.Sparsity(0.5)})
    assert str(info.value).startswith(
        "targets['*layer_scale']: the pattern matches no compressible layer, only layers "
        "without one: 'convnext_tiny_stage_0_block_0_layer_scale' (LayerScale), ")
    contract(model, {"*_depthwise_conv": tfadmm.Sparsity(0.3),
                     "*_pointwise_conv_*": tfadmm.Sparsity(0.7)}, tmp_path)


# -- the README's "Compress your own model" ----------------------------------------------


def readme_example():
    """The code block under the README's `compress-your-own-model` marker."""
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    after = readme.split("<!-- compress-your-own-model:", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    plain, admm = namespace["plain"], namespace["admm"]
    _masks_hold(admm)
    x = namespace["x"]
    loaded = keras.models.load_model("mobilenet_v3_small_compressed.keras")
    np.testing.assert_allclose(loaded(x[:4], training=False), plain(x[:4], training=False),
                               rtol=1e-5, atol=1e-5)
    serve = tf.saved_model.load("mobilenet_v3_small_savedmodel").signatures["serving_default"]
    served = next(iter(serve(input=tf.constant(x[:4])).values())).numpy()
    np.testing.assert_allclose(served, plain(x[:4], training=False), rtol=1e-4, atol=1e-4)


def test_the_readme_example_is_the_tested_contract():
    """Its targets and flow are those `test_mobilenet_v3_small` checks, step by step."""
    code = readme_example()
    for line in ('"*depthwise": tfadmm.Sparsity(0.3)', '"expanded_conv_*": tfadmm.Sparsity(0.6)',
                 '"logits": tfadmm.Quantize(4, per_channel=True)', "tfadmm.wrap(model, targets)",
                 "tfadmm.project(admm)", "tfadmm.recalibrate_batchnorm(admm",
                 "tfadmm.strip(admm)", "tfadmm.export(plain"):
        assert line in code
