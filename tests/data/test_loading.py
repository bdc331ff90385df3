import dataclasses
import pathlib
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfadmm
from tfadmm.data import specs, tfds_source
from tfadmm.errors import DataError, MissingDependencyError

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def _batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def npz_file(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "cifar10.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(50) % 10,
        x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(10),
    )
    return path


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_auto_finds_debian_fashion_mnist(monkeypatch):
    monkeypatch.delenv("TFADMM_DATA_DIR", raising=False)
    splits = tfadmm.data.load("fashion_mnist", take=90, batch_size=32)
    assert splits.origin == f"IDX files in {FASHION}"
    assert (splits.input_shape, splits.num_classes) == ((28, 28, 1), 10)
    assert splits.num_examples == {"train": 90, "validation": 10, "test": 15}
    x, y = _batches(splits.train)
    assert x.shape == (90, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    # Normalised with Fashion-MNIST's mean / std: roughly zero mean, unit variance.
    assert abs(x.mean()) < 0.15 and 0.8 < x.std() < 1.2
    assert _batches(splits.validation)[0].shape == (10, 28, 28, 1)


def test_tfds_with_mock_data():
    with tfds.testing.mock_data(num_examples=40):
        splits = tfadmm.data.load(
            "mnist", source="tfds", take=20, validation_split=0.2, batch_size=8
        )
        assert splits.num_examples == {"train": 20, "validation": 5, "test": 20}
        x, y = next(iter(splits.train))
    assert x.shape == (8, 28, 28, 1) and x.dtype == "float32" and y.dtype == "int64"
    assert splits.origin.startswith("TFDS 'mnist'")


def test_tfds_imagenet_pipeline_with_mock_data():
    with tfds.testing.mock_data(num_examples=3):
        splits = tfadmm.data.load("imagenet2012", source="tfds", take=2, batch_size=2)
        x, _ = next(iter(splits.train))
        x_test, _ = next(iter(splits.test))
    assert splits.input_shape == (224, 224, 3)
    assert x.shape == x_test.shape == (2, 224, 224, 3)


def test_npz_cifar_pipeline(npz_file):
    splits = tfadmm.data.load("cifar10", path=npz_file, batch_size=16)
    assert splits.num_examples == {"train": 45, "validation": 5, "test": 10}
    assert splits.input_shape == (32, 32, 3)
    x, y = _batches(splits.train)
    assert x.shape == (45, 32, 32, 3) and sorted(y) == sorted(np.arange(45) % 10)
    # Validation is the training data's tail, evaluated without augmentation.
    _, y_val = _batches(splits.validation)
    assert list(y_val) == list(np.arange(45, 50) % 10)


def test_normalize_false_only_scales_pixels_to_0_1(npz_file):
    raw = np.load(npz_file)
    plain = tfadmm.data.load("cifar10", path=npz_file, batch_size=16, normalize=False)
    x_test, _ = _batches(plain.test)
    np.testing.assert_allclose(x_test, raw["x_test"] / 255.0, rtol=1e-6)
    x_train, _ = _batches(plain.train)  # augmented (crop, flip) but not standardised
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    standard, _ = _batches(tfadmm.data.load("cifar10", path=npz_file, batch_size=16).test)
    mean, std = specs.SPECS["cifar10"].mean, specs.SPECS["cifar10"].std
    np.testing.assert_allclose(standard, (raw["x_test"] / 255.0 - mean) / std, rtol=1e-5,
                               atol=1e-5)


def test_validation_does_not_depend_on_seed_or_shuffling(npz_file):
    a = tfadmm.data.load("cifar10", path=npz_file, seed=1)
    b = tfadmm.data.load("cifar10", path=npz_file, seed=2)
    np.testing.assert_array_equal(_batches(a.validation)[0], _batches(b.validation)[0])


def test_same_seed_same_batches(npz_file):
    first = _batches(tfadmm.data.load("cifar10", path=npz_file, seed=3).train)
    again = _batches(tfadmm.data.load("cifar10", path=npz_file, seed=3).train)
    other = _batches(tfadmm.data.load("cifar10", path=npz_file, seed=4).train)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_env_var_and_image_folder(tmp_path, monkeypatch, write_tree):
    write_tree(tmp_path / "flowers" / "train", {"rose": 4, "tulip": 4}, size=(20, 16))
    write_tree(tmp_path / "flowers" / "test", {"rose": 1, "tulip": 1}, size=(20, 16))
    monkeypatch.setenv("TFADMM_DATA_DIR", str(tmp_path))
    splits = tfadmm.data.load("flowers", validation_split=0.25, batch_size=4)
    assert splits.origin == f"image folder {tmp_path / 'flowers'}"
    assert (splits.num_classes, splits.input_shape) == (2, (20, 16, 3))
    x, _ = _batches(splits.train)
    assert x.shape == (6, 20, 16, 3) and 0.0 <= x.min() and x.max() <= 1.0  # generic: [0, 1]


def test_offline_error_names_what_to_do(tmp_path, monkeypatch):
    data, tfds_dir = tmp_path / "data", tmp_path / "tfds"
    data.mkdir()
    monkeypatch.setenv("TFADMM_DATA_DIR", str(data))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))

    def no_network(builder, data_dir):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tfds_source, "_prepare", no_network)
    with pytest.raises(DataError) as info:
        tfadmm.data.load("cifar10")
    assert str(info.value) == (
        f"Cannot load dataset 'cifar10': no local copy was found and TFDS could not prepare "
        f"it (TFDS could not prepare 'cifar10' in {tfds_dir}: OSError: network is "
        f"unreachable). Looked in: {data}/cifar10, {data}/cifar10.npz, TFDS data_dir "
        f"{tfds_dir} (TFADMM_DATA_DIR is set to '{data}'). To use it offline, save "
        "x_train, y_train, x_test, y_test (uint8 images, int labels) with numpy.savez as "
        "$TFADMM_DATA_DIR/cifar10.npz, or put an image tree (train/<class>/*.png, "
        "test/<class>/*.png) in $TFADMM_DATA_DIR/cifar10; or run `tfds build cifar10 "
        f"--data_dir {tfds_dir}` on a machine with internet access and copy "
        f"{tfds_dir}/cifar10 here."
    )


def test_offline_error_for_fashion_mnist_says_apt_get(tmp_path, monkeypatch):
    monkeypatch.delenv("TFADMM_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    missing = str(tmp_path / "none")
    spec = dataclasses.replace(specs.SPECS["fashion_mnist"], system_dirs=(missing,))
    monkeypatch.setitem(specs.SPECS, "fashion_mnist", spec)
    monkeypatch.setattr(tfds_source, "_prepare", lambda *_: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(DataError) as info:
        tfadmm.data.load("fashion_mnist")
    message = str(info.value)
    assert f"Looked in: {missing}, TFDS data_dir {tmp_path} (TFADMM_DATA_DIR is not set)" in message
    assert "run `apt-get install dataset-fashion-mnist`" in message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(source="web"), "Invalid `source`: expected one of 'auto', 'tfds', 'idx', 'npz', "
         "'folder'. Received: source='web'"),
        (dict(batch_size=0), "Invalid `batch_size`: expected a positive integer. "
         "Received: batch_size=0"),
        (dict(validation_split=1.0), "Invalid `validation_split`: expected a number in "
         "[0, 1). Received: validation_split=1.0"),
        (dict(take=-1), "Invalid `take`: expected a positive integer or None. Received: take=-1"),
        (dict(normalize="no"), "Invalid `normalize`: expected a boolean. Received: "
         "normalize='no'"),
        (dict(source="npz"), "source='npz' needs `path`: the npz location of 'mnist'. "
         "Received: path=None"),
    ],
)
def test_invalid_arguments(kwargs, expected):
    with pytest.raises(DataError) as info:
        tfadmm.data.load("mnist", **kwargs)
    assert str(info.value) == expected


def test_take_larger_than_the_data(npz_file):
    with pytest.raises(DataError) as info:
        tfadmm.data.load("cifar10", path=npz_file, take=50)
    assert str(info.value) == (
        "`take` asks for more examples than the training data holds: expected take + "
        "validation (50 + 6) <= 50. Received: take=50"
    )


def test_without_tensorflow_npz_files_come_as_py_datasets(npz_file, monkeypatch):
    with_tf = tfadmm.data.load("cifar10", path=npz_file, batch_size=16, take=20)
    x, y = _batches(with_tf.test)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    splits = tfadmm.data.load("cifar10", path=npz_file, batch_size=16, take=20)
    assert isinstance(splits.train, tfadmm.data.ArrayBatches)
    assert splits.num_examples == with_tf.num_examples == {"train": 20, "validation": 3,
                                                           "test": 4}
    np.testing.assert_array_equal(splits.test[0][0], x)
    np.testing.assert_array_equal(splits.test[0][1], y)
    x_train, _ = splits.train[0]
    assert x_train.shape == (16, 32, 32, 3) and x_train.dtype == np.float32


def test_without_tensorflow_tfds_says_it_needs_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError) as info:
        tfadmm.data.load("mnist", source="tfds", path=tmp_path)
    assert str(info.value).startswith(
        "tfadmm.data.load from TFDS (source='tfds') needs TensorFlow. Expected an importable "
        "`tensorflow` package (pip install tensorflow);"
    )


def test_without_tensorflow_auto_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFADMM_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError) as info:
        tfadmm.data.load("cifar10")
    assert str(info.value).startswith(
        "tfadmm.data.load('cifar10') from TFDS (no IDX, .npz or image-folder copy found "
        f"locally; looked in: {tmp_path}/cifar10, {tmp_path}/cifar10.npz) needs TensorFlow."
    )


def test_without_tensorflow_image_folders_say_they_need_it(tmp_path, monkeypatch, write_tree):
    write_tree(tmp_path / "train", {"a": 1, "b": 1})
    write_tree(tmp_path / "test", {"a": 1, "b": 1})
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError) as info:
        tfadmm.data.load("flowers", path=tmp_path)
    assert str(info.value).startswith(
        f"tfadmm.data.load from an image folder ({tmp_path}: decoding images) needs TensorFlow."
    )
