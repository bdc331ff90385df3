import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfadmm
from tests._tiny_models import batch, dense_model, pruned, ternary_conv_model
from tfadmm import exporting  # the module of the function `tfadmm.export`
from tfadmm.errors import TfadmmError


def _serve(path, x):
    outputs = tf.saved_model.load(str(path)).signatures["serving_default"](tf.constant(x))
    return next(iter(outputs.values())).numpy()


def _variables_bytes(path):
    return exporting.disk_size(path / "variables")


def test_savedmodel_of_pruned_model_is_exact_and_smaller(tmp_path):
    admm_model, plain = pruned(hidden=128)
    result = tfadmm.export(admm_model, tmp_path / "sm")
    x = batch((6,))
    np.testing.assert_allclose(_serve(tmp_path / "sm", x), plain(x), atol=1e-5, rtol=0)
    assert result.bytes == exporting.disk_size(tmp_path / "sm")
    assert result.bytes < result.dense_savedmodel_bytes
    # Against the same export of the unpruned model, 90 % of the kernel bytes are gone.
    tfadmm.export(dense_model(128), tmp_path / "dense", measure_dense=False)
    saved = _variables_bytes(tmp_path / "dense") - _variables_bytes(tmp_path / "sm")
    assert saved > 0.8 * 4 * (6 * 128 + 128 * 3)
    assert result.theoretical_bytes == tfadmm.build_report(plain).compressed_bytes + 4 * 131


def test_savedmodel_of_quantized_conv_model_is_exact(tmp_path):
    model = ternary_conv_model()
    result = tfadmm.export(model, tmp_path / "sm", measure_dense=False)
    x = batch((8, 8, 1))
    np.testing.assert_allclose(_serve(tmp_path / "sm", x), model(x), atol=1e-5, rtol=0)
    assert result.dense_savedmodel_bytes is None
    # 1-bit codes and an index: the kernels take under a tenth of their dense bytes.
    for layer in model.layers:
        if layer.weights:
            layer.kernel.assign(np.random.default_rng(0).normal(size=layer.kernel.shape))
    tfadmm.export(model, tmp_path / "dense", measure_dense=False)
    saved = _variables_bytes(tmp_path / "dense") - _variables_bytes(tmp_path / "sm")
    assert saved > 0.9 * 4 * (36 + 144 * 3)


def test_per_channel_binary_model_exports_one_bit_a_weight(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(64, name="fc")])
    wrapped = tfadmm.wrap(model, {"fc": tfadmm.Binary(per_channel=True)})
    tfadmm.project(wrapped)
    plain = tfadmm.strip(wrapped)
    kernel = keras.ops.convert_to_numpy(plain.get_layer("fc").kernel)
    assert len(np.unique(kernel)) > 64  # +-a_c for each output channel c: up to 128 values
    tfadmm.export(plain, tmp_path / "sm", measure_dense=False)
    x = batch((6,))
    np.testing.assert_allclose(_serve(tmp_path / "sm", x), plain(x), atol=1e-5, rtol=0)
    # 1-bit codes and a codebook of 2 floats per channel, not 8-bit codes into 128.
    dense = keras.Sequential([keras.Input((6,)), keras.layers.Dense(64)])
    tfadmm.export(dense, tmp_path / "dense", measure_dense=False)
    saved = _variables_bytes(tmp_path / "dense") - _variables_bytes(tmp_path / "sm")
    assert saved >= 4 * 6 * 64 - (6 * 64 // 8 + 4 * 128)


def test_savedmodel_serves_without_tfadmm_or_keras(tmp_path):
    admm_model, plain = pruned()
    tfadmm.export(admm_model, tmp_path / "sm", measure_dense=False)
    x = batch((6,))
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys; sys.modules['tfadmm'] = None; sys.modules['keras'] = None\n"
        "import numpy as np, tensorflow as tf\n"
        f"f = tf.saved_model.load({str(tmp_path / 'sm')!r}).signatures['serving_default']\n"
        f"y = f(tf.constant(np.load({str(tmp_path / 'x.npy')!r})))['output_0'].numpy()\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)\n"
    )
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), plain(x), atol=1e-5, rtol=0)


def test_savedmodel_keeps_scalar_variables_scalar(tmp_path):
    """A `Normalization` layer (EfficientNet's stem) holds a 0-d `count` variable."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="fc")(keras.layers.Normalization()(inputs))
    model = keras.Model(inputs, x)
    assert any(len(v.shape) == 0 for v in model.variables)
    tfadmm.export(model, tmp_path / "sm", measure_dense=False)
    x = batch((4,))
    np.testing.assert_allclose(_serve(tmp_path / "sm", x), model(x), rtol=1e-5, atol=1e-5)


def test_keras_format_round_trips(tmp_path):
    _, plain = pruned()
    result = tfadmm.export(plain, tmp_path / "m.keras", "keras", measure_dense=False)
    assert result.bytes == os.path.getsize(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = batch((6,))
    np.testing.assert_array_equal(loaded(x), plain(x))


def test_existing_path_is_not_overwritten(tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "keep.txt").write_text("mine")
    with pytest.raises(TfadmmError) as info:
        tfadmm.export(pruned()[1], tmp_path / "sm")
    assert str(info.value) == (
        f"Refusing to overwrite '{tmp_path / 'sm'}': it already exists (pass overwrite=True)."
    )
    assert (tmp_path / "sm" / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_and_leaves_no_temporary_files(tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "old.txt").write_text("old")
    tfadmm.export(pruned()[1], tmp_path / "sm", overwrite=True, measure_dense=False)
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    assert "saved_model.pb" in os.listdir(tmp_path / "sm")
    assert not (tmp_path / "sm" / "old.txt").exists()


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(model, path, preprocessing=None):
        os.makedirs(path)
        open(os.path.join(path, "half"), "w").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporting, "write_savedmodel", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        tfadmm.export(pruned()[1], tmp_path / "sm")
    assert os.listdir(tmp_path) == []


def test_unknown_format_is_rejected(tmp_path):
    with pytest.raises(TfadmmError) as info:
        tfadmm.export(pruned()[1], tmp_path / "m", "onnx")
    assert str(info.value) == (
        "Invalid `format`: expected one of savedmodel, keras, tflite. Received: format='onnx'"
    )


def test_tflite_with_sparsity_keeps_the_accuracy(tmp_path):
    _, plain = pruned()
    result = tfadmm.export(plain, tmp_path / "m.tflite", "tflite", measure_dense=False)
    assert result.bytes == os.path.getsize(tmp_path / "m.tflite")
    x = batch((6,), rows=16)
    labels = np.argmax(keras.ops.convert_to_numpy(plain(x)), axis=-1)
    data = [(x[:8], labels[:8]), (x[8:], keras.utils.to_categorical(labels[8:], 3))]
    assert tfadmm.evaluate_tflite(tmp_path / "m.tflite", data) == 1.0


def test_tflite_interpreter_runs_an_exported_model_like_keras(tmp_path):
    _, plain = pruned()
    tfadmm.export(plain, tmp_path / "m.tflite", "tflite", measure_dense=False)
    interpreter = exporting.tflite_interpreter(tmp_path / "m.tflite")
    interpreter.allocate_tensors()
    x = batch((6,), rows=1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    served = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(served, keras.ops.convert_to_numpy(plain(x)), atol=1e-5)


def _serving_inputs(path):
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {name: (spec.shape.as_list(), spec.dtype.name)
            for name, spec in serve.structured_input_signature[1].items()}


def test_an_input_keras_named_is_served_as_input(tmp_path):
    # Keras names an unnamed Input `keras_tensor_<n>`, and `input_layer_<n>` once reloaded:
    # names that change from one session to the next.
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.save(tmp_path / "m.keras")
    for index, source in enumerate((model, keras.models.load_model(tmp_path / "m.keras"))):
        result = tfadmm.export(source, tmp_path / f"sm{index}", measure_dense=False)
        assert result.inputs == (exporting.ServingInput("input", (None, 6), "float32"),)
        assert _serving_inputs(tmp_path / f"sm{index}") == {"input": ([None, 6], "float32")}
    named = tfadmm.export(dense_model(), tmp_path / "named", measure_dense=False)
    assert [x.name for x in named.inputs] == ["features"]


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="no Fashion-MNIST IDX files")
def test_included_preprocessing_serves_raw_pixels_as_the_pipeline_sees_them(tmp_path):
    from tfadmm.data.idx import FILES, find_file, read_idx

    model = tfadmm.models.get("lenet5")
    normalization = tfadmm.data.Normalization.of_dataset("fashion_mnist")
    result = tfadmm.export(model, tmp_path / "sm", preprocessing=normalization,
                           measure_dense=False)
    assert result.preprocessing == normalization
    assert result.inputs == (exporting.ServingInput("input", (None, 28, 28, 1), "float32"),)
    # The test split's first images, raw from the IDX file and through tfadmm's pipeline.
    splits = tfadmm.data.load("fashion_mnist", batch_size=16, take=600, validation_split=0.0)
    pipeline_x, _ = next(iter(splits.test))
    stem = "t10k-images-idx3-ubyte"
    raw = read_idx(find_file(FASHION, stem), FILES[stem])[:16, :, :, None]
    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"](
        input=tf.constant(raw, tf.float32))["output_0"]
    np.testing.assert_allclose(served, model(pipeline_x), atol=1e-4, rtol=0)


def test_preprocessing_needs_a_savedmodel_and_an_image_input(tmp_path):
    normalization = tfadmm.data.Normalization((0.5,), (0.25,))
    with pytest.raises(TfadmmError) as info:
        tfadmm.export(dense_model(), tmp_path / "m.keras", "keras", preprocessing=normalization)
    assert str(info.value) == (
        "`preprocessing` is only used by format='savedmodel'. Received: format='keras'"
    )
    with pytest.raises(TfadmmError) as info:
        tfadmm.export(dense_model(), tmp_path / "sm", preprocessing=normalization)
    assert str(info.value) == (
        "Cannot bake (pixels / 255 - mean) / std, mean=(0.5,), std=(0.25,) into model 'tiny': "
        "expected one float image input (batch, height, width, channels) with 1 channel(s) or "
        "a multiple. Received: [None, 6] float32"
    )
    assert not os.listdir(tmp_path)


@pytest.fixture(scope="module")
def fashion_pruned():
    """`(dense, pruned, splits)`: an MLP trained on 3,000 Fashion-MNIST images, then pruned
    to 80 % by tfadmm (hard projection, one masked retraining epoch)."""
    splits = tfadmm.data.load("fashion_mnist", batch_size=64, take=3000, validation_split=0.0,
                              augment=False)
    keras.utils.set_random_seed(0)
    dense = keras.Sequential([
        keras.Input((28, 28, 1), name="input"), keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu", name="fc1"), keras.layers.Dense(10, name="fc2"),
    ], name="mlp")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dense.compile("adam", loss)
    dense.fit(splits.train, epochs=2, verbose=0)
    admm = tfadmm.wrap(keras.models.clone_model(dense), {"fc*": tfadmm.Sparsity(0.8)})
    admm.model.set_weights(dense.get_weights())
    admm.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    tfadmm.project(admm)
    admm.fit(splits.train, epochs=1, verbose=0)
    return dense, tfadmm.strip(admm), splits


def _accuracy(model, dataset):
    hits = [np.argmax(keras.ops.convert_to_numpy(model(x)), -1) == y.numpy() for x, y in dataset]
    return float(np.mean(np.concatenate(hits)))


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="no Fashion-MNIST IDX files")
@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_tflite_of_a_pruned_model_keeps_its_accuracy_on_real_images(fashion_pruned, int8,
                                                                   tmp_path):
    dense, plain, splits = fashion_pruned
    kernels = [keras.ops.convert_to_numpy(plain.get_layer(n).kernel) for n in ("fc1", "fc2")]
    assert [float(np.mean(k == 0)) for k in kernels] == pytest.approx([0.8, 0.8], abs=1e-3)
    keras_accuracy = _accuracy(plain, splits.test)
    assert keras_accuracy > 0.7  # 500 real test images
    representative = [x for x, _ in splits.train.take(4)] if int8 else None
    result = tfadmm.export(plain, tmp_path / "m.tflite", "tflite", measure_dense=False,
                           representative_data=representative)
    accuracy = tfadmm.evaluate_tflite(tmp_path / "m.tflite", splits.test)
    assert accuracy == pytest.approx(keras_accuracy, abs=0.02 if int8 else 0.002)
    # The sparse (and int8) encodings show in the size, against the dense model's float TFLite.
    dense_bytes = tfadmm.export(dense, tmp_path / "d.tflite", "tflite", measure_dense=False).bytes
    assert result.bytes < (0.25 if int8 else 0.45) * dense_bytes
