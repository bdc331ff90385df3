"""Fixtures for the data tests: small generated image trees."""

import numpy as np
import pytest
import tensorflow as tf


def _write_tree(root, counts, size=(10, 12)):
    """Writes PNG images under `root/<class>/`; `counts` = {class: number of images}."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            image = np.full((*size, 3), 20 * i, np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())


@pytest.fixture
def write_tree():
    return _write_tree
