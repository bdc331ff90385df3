import gzip
import pathlib

import numpy as np
import pytest

from tfadmm.data.idx import load_idx, read_idx
from tfadmm.errors import DataError

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist"
)


@needs_fashion
def test_reads_debian_fashion_mnist():
    raw = load_idx(FASHION)
    assert (raw.num_train, raw.num_test, raw.num_classes) == (60000, 10000, 10)
    assert raw.image_shape == (28, 28, 1)
    x, y = next(iter(raw.read("train", 0, 5).batch(5)))
    assert x.dtype == "uint8" and y.dtype == "int64"
    assert x.shape == (5, 28, 28, 1)


def _write(path, magic, array, compress):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [True, False])
def test_plain_and_gzipped_files(tmp_path, compress):
    suffix = ".gz" if compress else ""
    x = np.arange(3 * 4 * 4).reshape(3, 4, 4) % 256
    for kind in ("train", "t10k"):
        _write(tmp_path / f"{kind}-images-idx3-ubyte{suffix}", 0x0803, x, compress)
        _write(tmp_path / f"{kind}-labels-idx1-ubyte{suffix}", 0x0801, np.arange(3), compress)
    raw = load_idx(tmp_path)
    assert (raw.num_train, raw.image_shape, raw.num_classes) == (3, (4, 4, 1), 3)


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    _write(path, 0x0803, np.zeros((1, 1, 1)), compress=False)
    with pytest.raises(DataError) as info:
        read_idx(path, 0x0801)
    assert str(info.value) == (
        f"Invalid IDX file {path}: expected magic number 0x00000801 (unsigned bytes, "
        "rank 1). Received: 0x00000803"
    )


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_idx(tmp_path)
    assert str(info.value) == (
        f"Missing IDX file in {tmp_path}: expected train-images-idx3-ubyte or "
        "train-images-idx3-ubyte.gz (the four files are train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)."
    )
