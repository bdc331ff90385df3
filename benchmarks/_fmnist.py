"""A tiny reader of the Fashion-MNIST IDX files, for the benchmarks only.

(`tfadmm.data` will replace it; it reads the four `*-idx*-ubyte.gz` files.)
"""

from __future__ import annotations

import gzip
import pathlib

import numpy as np

DEFAULT_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
CLASSES = 10


def read_idx(path):
    """The array stored in one (gzipped) IDX file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(directory=DEFAULT_DIR, train_size=None, test_size=None):
    """`(x_train, y_train), (x_test, y_test)`: images (N, 28, 28, 1) in [0, 1], int labels.

    `train_size` / `test_size` keep the first examples of each split.
    """
    directory = pathlib.Path(directory)

    def split(prefix, size):
        x = read_idx(directory / f"{prefix}-images-idx3-ubyte.gz")[:size]
        y = read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz")[:size]
        return (x.astype("float32") / 255.0)[..., None], y.astype("int32")

    return split("train", train_size), split("t10k", test_size)
