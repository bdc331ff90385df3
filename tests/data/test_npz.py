import numpy as np
import pytest

from tfadmm.data.npz import load_npz
from tfadmm.errors import DataError


def test_reads_keras_style_arrays(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
        y_train=np.arange(6).reshape(6, 1) % 3,
        x_test=rng.random((2, 8, 8, 3)),  # floats in [0, 1]: rescaled to uint8
        y_test=np.array([0, 2]),
    )
    raw = load_npz(path)
    assert (raw.num_train, raw.num_test, raw.num_classes) == (6, 2, 3)
    x, y = next(iter(raw.read("test", 0, 2).batch(2)))
    assert x.dtype == "uint8" and y.dtype == "int64"


def test_missing_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((1, 2, 2)), y_train=np.zeros(1))
    with pytest.raises(DataError) as info:
        load_npz(path)
    assert str(info.value) == (
        f"{path}: expected arrays x_train, y_train, x_test, y_test. Missing: x_test, "
        "y_test. Received keys: x_train, y_train"
    )


def test_not_an_npz_file(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match=r"^Cannot read \.npz file"):
        load_npz(path)
