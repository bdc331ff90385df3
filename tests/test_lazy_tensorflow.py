"""tfadmm imports without TensorFlow; the parts that need it say so when it is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tensorflow as tf

from tests._without_tensorflow import HAS_JAX, run_without_tensorflow
from tfadmm import lazy_tensorflow
from tfadmm.errors import MissingDependencyError


def test_the_stand_in_reads_tensorflow():
    tf_ = lazy_tensorflow.needs_tensorflow("this test")
    assert tf_.constant(2).numpy() == 2
    assert "this test" in repr(tf_)


def test_without_tensorflow_the_stand_in_names_what_needs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    tf_ = lazy_tensorflow.needs_tensorflow("tfadmm.export (SavedModel and TFLite)")
    with pytest.raises(MissingDependencyError) as caught:
        tf_.constant(2)
    assert str(caught.value) == (
        "tfadmm.export (SavedModel and TFLite) needs TensorFlow. Expected an importable "
        "`tensorflow` package (pip install tensorflow); the rest of tfadmm (wrap, fit, project, "
        "strip, `.keras` files, recipes on IDX or .npz data) runs without it. Received: import "
        "of tensorflow halted; None in sys.modules (Keras backend: tensorflow)"
    )
    assert isinstance(caught.value, ImportError)
    assert not lazy_tensorflow.is_loaded()
    assert not lazy_tensorflow.is_dataset(np.zeros(3))


def test_is_dataset():
    assert lazy_tensorflow.is_dataset(tf.data.Dataset.range(3))
    assert not lazy_tensorflow.is_dataset(np.zeros(3))
    assert lazy_tensorflow.INFINITE_CARDINALITY == tf.data.INFINITE_CARDINALITY


@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_tfadmm_and_its_cli_import_without_tensorflow(backend):
    if not HAS_JAX:  # Keras' numpy backend imports jax too (its fft)
        pytest.skip("jax is not installed")
    done = run_without_tensorflow(
        "import tfadmm, tfadmm_cli.main\n"
        "assert sys.modules.get('tensorflow') is None\n"
        "try:\n"
        "    tfadmm.data.load('mnist', source='tfds')\n"
        "except tfadmm.errors.MissingDependencyError as error:\n"
        "    print(error)\n",
        backend=backend,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("tfadmm.data.load from TFDS (source='tfds') needs TensorFlow.")
