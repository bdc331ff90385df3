"""Reading MNIST-format IDX files (plain or gzipped), e.g. Debian's dataset-fashion-mnist."""

from __future__ import annotations

import gzip
import pathlib

import numpy as np

from tfadmm.data.raw import from_arrays
from tfadmm.errors import DataError

# file stem -> the IDX magic number it must carry (0x08 = unsigned byte, then the rank).
FILES = {
    "train-images-idx3-ubyte": 0x0803,
    "train-labels-idx1-ubyte": 0x0801,
    "t10k-images-idx3-ubyte": 0x0803,
    "t10k-labels-idx1-ubyte": 0x0801,
}


def find_file(directory, stem):
    """The IDX file for `stem` in `directory` (`.gz` or not, `-idx` or `.idx`), or None."""
    directory = pathlib.Path(directory)
    for candidate in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            path = directory / f"{candidate}{suffix}"
            if path.is_file():
                return path
    return None


def is_idx_directory(directory):
    """Whether `directory` holds the four IDX files."""
    return pathlib.Path(directory).is_dir() and all(
        find_file(directory, stem) for stem in FILES
    )


def read_idx(path, expected_magic):
    """Reads one IDX file into a uint8 array.

    Raises:
        DataError: a truncated file or one with the wrong magic number.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise DataError(f"Cannot read IDX file {path}: {error}") from None
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != expected_magic:
        raise DataError(
            f"Invalid IDX file {path}: expected magic number {expected_magic:#010x} "
            f"(unsigned bytes, rank {expected_magic & 0xFF}). Received: "
            f"{'an empty file' if magic is None else f'{magic:#010x}'}"
        )
    rank = expected_magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    offset = 4 + 4 * rank
    size = int(np.prod(shape))
    if len(data) - offset != size:
        raise DataError(
            f"Invalid IDX file {path}: its header announces shape {shape} "
            f"({size} bytes), but the file holds {len(data) - offset} bytes of data."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_idx(directory):
    """Reads the four MNIST-format files in `directory` into `RawData`.

    Raises:
        DataError: a missing or invalid file.
    """
    arrays = {}
    for stem, magic in FILES.items():
        path = find_file(directory, stem)
        if path is None:
            raise DataError(
                f"Missing IDX file in {directory}: expected {stem} or {stem}.gz "
                f"(the four files are {', '.join(FILES)})."
            )
        arrays[stem] = read_idx(path, magic)
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for kind, x, y in (("train", x_train, y_train), ("t10k", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(
                f"IDX files in {directory}: {kind} images and labels differ in count. "
                f"Received: {len(x)} images, {len(y)} labels."
            )
    return from_arrays(
        x_train, y_train, x_test, y_test, origin=f"IDX files in {directory}"
    )
