"""Reading a `.npz` file with `x_train, y_train, x_test, y_test` (as `keras.datasets` returns)."""

from __future__ import annotations

import zipfile

import numpy as np

from tfadmm.data.raw import from_arrays
from tfadmm.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _as_images(x, path, key):
    if x.ndim not in (3, 4):
        raise DataError(
            f"{path}: `{key}` must be images shaped (N, H, W) or (N, H, W, C). "
            f"Received: shape {x.shape}"
        )
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating) and x.size and float(x.max()) <= 1.0:
        x = x * 255.0  # images already scaled to [0, 1]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def load_npz(path):
    """Reads images (uint8 or float; float in [0, 1] is rescaled) and labels.

    Raises:
        DataError: a missing or unreadable file, a missing key, or arrays of
            the wrong shape.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in KEYS if k not in data.files]
            if missing:
                raise DataError(
                    f"{path}: expected arrays {', '.join(KEYS)}. Missing: "
                    f"{', '.join(missing)}. Received keys: {', '.join(data.files) or '(none)'}"
                )
            arrays = {k: data[k] for k in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"Cannot read .npz file {path}: {error}") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1)
        if len(x) != len(y):
            raise DataError(
                f"{path}: x_{split} and y_{split} differ in length. "
                f"Received: {len(x)} images, {len(y)} labels."
            )
        arrays[f"x_{split}"] = _as_images(x, path, f"x_{split}")
        arrays[f"y_{split}"] = y.astype(np.int64)
    return from_arrays(*(arrays[k] for k in KEYS), origin=f".npz file {path}")
